// Linkerd ServiceProfile (linkerd.io/v1alpha2): routes with timeouts and retries, and a retry budget.
import { z } from 'zod';
import type { FieldPath } from '../issues.js';
import { parseDuration } from '../quantity.js';
import type { Resource } from '../types.js';
import { checkMinimum, defineKind, ignored, Integer, objectSchema, type Report } from './define.js';

/** Which requests belong to a route; `all`, `any` and `not` combine conditions. */
export interface RequestMatch {
  all?: RequestMatch[];
  any?: RequestMatch[];
  not?: RequestMatch;
  /** Must match the whole path. */
  pathRegex?: string;
  method?: string;
}

/** Which responses belong to a response class. */
export interface ResponseMatch {
  all?: ResponseMatch[];
  any?: ResponseMatch[];
  not?: ResponseMatch;
  /** Inclusive status range; either end may be absent. */
  status?: { min?: number; max?: number };
}

const RequestMatchSchema: z.ZodType<RequestMatch> = z.lazy(() =>
  z.object({
    all: z.array(RequestMatchSchema).optional(),
    any: z.array(RequestMatchSchema).optional(),
    not: RequestMatchSchema.optional(),
    pathRegex: z.string().optional(),
    method: z.string().optional(),
  }),
);

const ResponseMatchSchema: z.ZodType<ResponseMatch> = z.lazy(() =>
  z.object({
    all: z.array(ResponseMatchSchema).optional(),
    any: z.array(ResponseMatchSchema).optional(),
    not: ResponseMatchSchema.optional(),
    status: z.object({ min: Integer.optional(), max: Integer.optional() }).optional(),
  }),
);

const ResponseClassSchema = z.object({
  condition: ResponseMatchSchema,
  /** Responses of this class count as failures in success rates. */
  isFailure: z.boolean().default(false),
});

const RouteSchema = z.object({
  name: z.string().min(1, { error: 'must not be empty' }),
  condition: RequestMatchSchema,
  responseClasses: z.array(ResponseClassSchema).optional(),
  isRetryable: z.boolean().default(false),
  /** A Go duration (`300ms`); see `parseDuration`. */
  timeout: z.string().optional(),
});

const RetryBudgetSchema = z.object({
  /** Retries allowed as a fraction of original requests. */
  retryRatio: z.number(),
  /** Retries always allowed per second, whatever the ratio. */
  minRetriesPerSecond: Integer,
  /** The window over which the ratio is computed: a Go duration (`10s`). */
  ttl: z.string(),
});

const ServiceProfileSpecSchema = z.object({
  routes: z.array(RouteSchema).default([]),
  retryBudget: RetryBudgetSchema.optional(),
  dstOverrides: ignored(z.array(z.object({ authority: z.string(), weight: z.union([z.number(), z.string()]) })).optional()),
  opaquePorts: ignored(z.unknown().optional()),
});

export type ResponseClass = z.output<typeof ResponseClassSchema>;
export type RouteSpec = z.output<typeof RouteSchema>;
export type RetryBudget = z.output<typeof RetryBudgetSchema>;
export type ServiceProfileSpec = z.output<typeof ServiceProfileSpecSchema>;
export type ServiceProfile = Resource<ServiceProfileSpec>;

export const serviceProfileKind = defineKind({
  group: 'linkerd.io',
  kind: 'ServiceProfile',
  plural: 'serviceprofiles',
  shortNames: ['sp'],
  namespaced: true,
  versions: ['v1alpha2'],
  // Named after the service's FQDN, e.g. `webapp.booksapp.svc.cluster.local`.
  nameRule: 'dns1123-subdomain',
  schema: objectSchema({ spec: ServiceProfileSpecSchema }),
  check: (profile, report) => {
    const spec = profile.spec;
    spec.routes.forEach((route, i) => {
      const at = ['spec', 'routes', i];
      checkRequestMatch(route.condition, [...at, 'condition'], report);
      checkDuration(route.timeout, [...at, 'timeout'], report);
      (route.responseClasses ?? []).forEach((rc, j) => checkResponseMatch(rc.condition, [...at, 'responseClasses', j, 'condition'], report));
    });
    if (spec.retryBudget) {
      checkMinimum(spec.retryBudget.retryRatio, 0, ['spec', 'retryBudget', 'retryRatio'], report);
      checkMinimum(spec.retryBudget.minRetriesPerSecond, 0, ['spec', 'retryBudget', 'minRetriesPerSecond'], report);
      checkDuration(spec.retryBudget.ttl, ['spec', 'retryBudget', 'ttl'], report);
    }
  },
});

function checkDuration(text: string | undefined, path: FieldPath, report: Report): void {
  if (text !== undefined && parseDuration(text) === undefined) report(path, `must be a duration such as 300ms or 10s, got ${JSON.stringify(text)}`);
}

function checkRequestMatch(match: RequestMatch, path: FieldPath, report: Report): void {
  if (match.all === undefined && match.any === undefined && match.not === undefined && match.pathRegex === undefined && match.method === undefined) {
    report(path, 'must set at least one of method, pathRegex, all, any, not');
  }
  if (match.pathRegex !== undefined) {
    try {
      new RegExp(match.pathRegex);
    } catch (err) {
      report([...path, 'pathRegex'], `is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (match.method !== undefined && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(match.method)) {
    report([...path, 'method'], `must be an HTTP method such as GET, got ${JSON.stringify(match.method)}`);
  }
  match.all?.forEach((m, i) => checkRequestMatch(m, [...path, 'all', i], report));
  match.any?.forEach((m, i) => checkRequestMatch(m, [...path, 'any', i], report));
  if (match.not) checkRequestMatch(match.not, [...path, 'not'], report);
}

function checkResponseMatch(match: ResponseMatch, path: FieldPath, report: Report): void {
  if (match.all === undefined && match.any === undefined && match.not === undefined && match.status === undefined) {
    report(path, 'must set at least one of status, all, any, not');
  }
  const { min, max } = match.status ?? {};
  for (const [end, code] of [['min', min], ['max', max]] as const) {
    if (code !== undefined && (code < 100 || code > 599)) report([...path, 'status', end], `must be an HTTP status between 100 and 599, got ${code}`);
  }
  if (min !== undefined && max !== undefined && min > max) report([...path, 'status'], `min (${min}) must not be greater than max (${max})`);
  match.all?.forEach((m, i) => checkResponseMatch(m, [...path, 'all', i], report));
  match.any?.forEach((m, i) => checkResponseMatch(m, [...path, 'any', i], report));
  if (match.not) checkResponseMatch(match.not, [...path, 'not'], report);
}
