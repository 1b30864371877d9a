// SMI TrafficSplit, every version (split.smi-spec.io v1alpha1 … v1alpha4). Each version is read into one
// shape: the user's apiVersion is kept, and every backend's weight is a plain number.
import { z } from 'zod';
import { parseQuantity } from '../quantity.js';
import { dns1123SubdomainError } from '../names.js';
import type { Resource } from '../types.js';
import { checkMinimum, defineKind, ignored, Integer, objectSchema } from './define.js';

/** v1alpha1 weights are Kubernetes quantities: `50`, `500m`, `1`. */
const QuantityWeight = z
  .union([z.number(), z.string()], { error: (iss) => (iss.input === undefined ? undefined : 'must be a number or a quantity such as 500m') })
  .transform((value, ctx) => {
    const weight = parseQuantity(value);
    if (weight === undefined) {
      ctx.issues.push({ code: 'custom', message: 'must be a number or a quantity such as 500m', input: value });
      return z.NEVER;
    }
    return weight;
  });

/** v1alpha2 and later weights are integers. */
const IntegerWeight = Integer;

const backend = (weight: typeof QuantityWeight | typeof IntegerWeight) =>
  z.object({
    /** The Service that receives this share of the traffic. */
    service: z.string().min(1, { error: 'must not be empty' }),
    weight,
  });

/** v1alpha3+: HTTPRouteGroup/TCPRoute references that narrow which requests are split. */
const Matches = ignored(
  z.array(z.object({ kind: z.string(), name: z.string(), apiGroup: z.string().optional() })).optional(),
);

function specSchema(version: string) {
  const spec = z.object({
    /** The root service clients address; its traffic is split among the backends. */
    service: z.string().min(1, { error: 'must not be empty' }),
    backends: z.array(backend(version === 'v1alpha1' ? QuantityWeight : IntegerWeight)).min(1, { error: 'must have at least one backend' }),
  });
  return version === 'v1alpha3' || version === 'v1alpha4' ? spec.extend({ matches: Matches }) : spec;
}

export interface TrafficSplitBackend {
  service: string;
  /** Relative weight, whatever form the manifest wrote it in (`500m` is 0.5). */
  weight: number;
}

export interface TrafficSplitSpec {
  service: string;
  backends: TrafficSplitBackend[];
  matches?: { kind: string; name: string; apiGroup?: string }[];
}

export type TrafficSplit = Resource<TrafficSplitSpec>;

export const trafficSplitKind = defineKind({
  group: 'split.smi-spec.io',
  kind: 'TrafficSplit',
  plural: 'trafficsplits',
  shortNames: ['ts'],
  namespaced: true,
  versions: ['v1alpha4', 'v1alpha3', 'v1alpha2', 'v1alpha1'],
  nameRule: 'dns1123-subdomain',
  schema: (version: string) => objectSchema({ spec: specSchema(version) }),
  check: (split, report) => {
    const spec: TrafficSplitSpec = split.spec;
    const serviceError = dns1123SubdomainError(spec.service);
    if (spec.service !== '' && serviceError) report(['spec', 'service'], `${JSON.stringify(spec.service)} ${serviceError}`);
    spec.backends.forEach((b, i) => {
      const error = dns1123SubdomainError(b.service);
      if (b.service !== '' && error) report(['spec', 'backends', i, 'service'], `${JSON.stringify(b.service)} ${error}`);
      checkMinimum(b.weight, 0, ['spec', 'backends', i, 'weight'], report);
    });
    if (spec.backends.every((b) => b.weight === 0)) report(['spec', 'backends'], 'weights must not all be zero');
  },
});
