// What a kind is made of, and the schema pieces every kind shares (object metadata, label selectors).
import { z } from 'zod';
import type { FieldPath } from '../issues.js';
import { dns1035LabelError, dns1123LabelError, dns1123SubdomainError, labelValueError, qualifiedNameError } from '../names.js';

/** Reports one problem at a field path of the object being checked. */
export type Report = (path: FieldPath, reason: string) => void;

/** How Kubernetes checks `metadata.name` for a kind. */
export type NameRule = 'dns1123-subdomain' | 'dns1123-label' | 'dns1035-label';

/** A Kubernetes model class from `kubernetes-models`: construct with the object, `validate()` throws its schema errors. */
export type KubernetesModel = new (data: never) => { validate(): void };

export interface KindDefinition {
  /** API group; `''` for the core group (`v1`). */
  readonly group: string;
  readonly kind: string;
  /** Lower-case plural, as the CLI and `kind.group` names use it (`deployments`). */
  readonly plural: string;
  readonly singular: string;
  /** Extra names the CLI accepts (`deploy`, `svc`). */
  readonly shortNames: readonly string[];
  readonly namespaced: boolean;
  /** Served versions, preferred first. */
  readonly versions: readonly string[];
  readonly nameRule: NameRule;
  /**
   * Strait's schema of the whole object at `version`: the fields Strait reads, with the defaults
   * Kubernetes applies. For custom resource kinds it is the whole CRD schema (fields Strait does not
   * act on are wrapped in `ignored()`).
   */
  schema(version: string): z.ZodType;
  /** For kinds Kubernetes defines: its official schema (model class) and its OpenAPI type name. */
  readonly kubernetes?: { readonly openApiType: string; model(): Promise<KubernetesModel> };
  /** Checks beyond the schema, on the parsed object (defaults applied). */
  check?(object: unknown, report: Report): void;
}

export function apiVersionOf(def: KindDefinition, version = def.versions[0]!): string {
  return def.group === '' ? version : `${def.group}/${version}`;
}

/**
 * Declares a kind; `schema` and `check` are typed together. One schema for every version, or a
 * function of the version when they differ.
 */
export function defineKind<S extends z.ZodType>(def: {
  group: string;
  kind: string;
  plural: string;
  shortNames: string[];
  namespaced: boolean;
  versions: string[];
  nameRule: NameRule;
  schema: S | ((version: string) => S);
  kubernetes?: { openApiType: string; model(): Promise<KubernetesModel> };
  check?: (object: z.output<S>, report: Report) => void;
}): KindDefinition {
  const { schema, check, ...rest } = def;
  return {
    ...rest,
    singular: def.kind.toLowerCase(),
    schema: typeof schema === 'function' ? schema : () => schema,
    check,
  };
}

/** Fields a schema declares but the local runtime does not act on; `ignoredFields()` lists them. */
export const ignoredByStrait = z.registry();

export function ignored<T extends z.ZodType>(schema: T): T {
  ignoredByStrait.add(schema, {});
  return schema;
}

// ---- shared schemas ----

const StringMap = z.record(z.string(), z.string());

export const OwnerReferenceSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
});

export const ObjectMetaSchema = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  labels: StringMap.optional(),
  annotations: StringMap.optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  ownerReferences: z.array(OwnerReferenceSchema).optional(),
});

export const LabelSelectorRequirementSchema = z.object({
  key: z.string(),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).optional(),
});

export const LabelSelectorSchema = z.object({
  matchLabels: StringMap.optional(),
  matchExpressions: z.array(LabelSelectorRequirementSchema).optional(),
});

/** The whole object: apiVersion, kind, metadata, and the kind's own fields (`spec`, or others). */
export function objectSchema<Shape extends z.ZodRawShape>(fields: Shape) {
  return z.object({ apiVersion: z.string(), kind: z.string(), metadata: ObjectMetaSchema, ...fields });
}

// Ranges are checked by the kinds' `check` functions rather than here: a schema failure stops the
// checks that need the whole object, and the user should see every problem at once.
export const Integer = z.number({ error: (iss) => (iss.input === undefined ? undefined : 'must be an integer') }).int({ error: 'must be an integer' });

export const Protocol = z.enum(['TCP', 'UDP', 'SCTP']).default('TCP');

// ---- shared checks ----

export function checkPort(port: number, path: FieldPath, report: Report): void {
  if (port < 1 || port > 65535) report(path, `must be between 1 and 65535, got ${port}`);
}

export function checkMinimum(value: number, minimum: number, path: FieldPath, report: Report): void {
  if (value < minimum) report(path, `must be >= ${minimum}, got ${value}`);
}

export function checkName(rule: NameRule, name: string, path: FieldPath, report: Report): void {
  const error =
    name === ''
      ? 'must not be empty'
      : rule === 'dns1035-label'
        ? dns1035LabelError(name)
        : rule === 'dns1123-label'
          ? dns1123LabelError(name)
          : dns1123SubdomainError(name);
  if (error) report(path, `${JSON.stringify(name)} ${error}`);
}

export function checkLabels(labels: Record<string, string> | undefined, path: FieldPath, report: Report): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const keyError = qualifiedNameError(key);
    if (keyError) report([...path, key], `key ${keyError}`);
    const valueError = labelValueError(value);
    if (valueError) report([...path, key], `value ${JSON.stringify(value)} ${valueError}`);
  }
}

export function checkAnnotations(annotations: Record<string, string> | undefined, path: FieldPath, report: Report): void {
  for (const key of Object.keys(annotations ?? {})) {
    const keyError = qualifiedNameError(key);
    if (keyError) report([...path, key], `key ${keyError}`);
  }
}

export function checkLabelSelector(selector: z.output<typeof LabelSelectorSchema>, path: FieldPath, report: Report): void {
  checkLabels(selector.matchLabels, [...path, 'matchLabels'], report);
  (selector.matchExpressions ?? []).forEach((req, i) => {
    const at = [...path, 'matchExpressions', i];
    const keyError = qualifiedNameError(req.key);
    if (keyError) report([...at, 'key'], `${JSON.stringify(req.key)}: ${keyError}`);
    const hasValues = (req.values ?? []).length > 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && !hasValues) report([...at, 'values'], `must be non-empty for operator ${req.operator}`);
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && hasValues) report([...at, 'values'], `must be empty for operator ${req.operator}`);
  });
}

/** Reports duplicates among `names` (skipping absent ones) at `path[i].field`. */
export function checkUnique(names: (string | undefined)[], path: FieldPath, field: string, what: string, report: Report): void {
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (name === undefined) return;
    if (seen.has(name)) report([...path, i, field], `duplicate ${what} ${JSON.stringify(name)}`);
    seen.add(name);
  });
}
