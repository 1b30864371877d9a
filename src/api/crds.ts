// How Strait's kinds live in a Kubernetes API server: the REST coordinates of every kind the store
// serves, and a CustomResourceDefinition for each kind Kubernetes does not define itself, its schema
// generated from the zod schema that validates a local manifest.
//
// Objects here are in wire format (`x-kubernetes-preserve-unknown-fields`, not client-node's
// camelCase models), so they can be written as YAML or sent as JSON unchanged.
import { z } from 'zod';
import { KINDS, kindNamed, type KindDefinition } from './kinds.js';
import type { Resource } from './types.js';

/** Where a kind is served: `/api/v1/...` for the core group, `/apis/<group>/<version>/...` otherwise. */
export interface KindRoute {
  kind: string;
  /** `''` for the core group. */
  group: string;
  /** The version the store reads and writes. */
  version: string;
  /** Every served version, preferred first. */
  versions: readonly string[];
  plural: string;
  namespaced: boolean;
  /** True when Strait defines the kind with a CRD; false for Kubernetes' built-in kinds. */
  custom: boolean;
}

function routeOf(def: KindDefinition): KindRoute {
  return {
    kind: def.kind,
    group: def.group,
    version: def.versions[0]!,
    versions: def.versions,
    plural: def.plural,
    namespaced: def.namespaced,
    custom: def.kubernetes === undefined,
  };
}

/** Every kind the store serves, by kind name. */
export const KIND_ROUTES: ReadonlyMap<string, KindRoute> = new Map(KINDS.map((def) => [def.kind, routeOf(def)]));

export function kindRoute(kind: string): KindRoute | undefined {
  return KIND_ROUTES.get(kind);
}

/** `v1`, `apps/v1`, `split.smi-spec.io/v1alpha2`: a kind's apiVersion at one of its versions. */
export function routeApiVersion(route: KindRoute, version = route.version): string {
  return route.group === '' ? version : `${route.group}/${version}`;
}

/** The kinds Strait installs CRDs for. */
export const CUSTOM_KINDS: readonly KindDefinition[] = KINDS.filter((def) => def.kubernetes === undefined);

/**
 * TrafficSplit's stored version. Its versions differ (v1alpha1 weights are quantities, v1alpha3+
 * add `matches`), but each version's fields are a subset of v1alpha4's and the weight's type is
 * only checked on write, so the API server converts between them by relabelling (`None`), and
 * storing v1alpha4 keeps every field of every version. A quantity weight written as v1alpha1
 * (`500m`) reads back as that string in every version; the Kubernetes store normalises it.
 */
const STORAGE_VERSION: Record<string, string> = { TrafficSplit: 'v1alpha4' };

/** A node of an OpenAPI v3 schema as a CRD holds it (apiextensions.k8s.io/v1 JSONSchemaProps). */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps;
  required?: string[];
  items?: JSONSchemaProps;
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-int-or-string'?: true;
}

export interface CustomResourceDefinition extends Resource {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories: string[] };
    scope: 'Namespaced' | 'Cluster';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources: { status: Record<string, never> };
    }[];
  };
}

/** Label on every CRD Strait defines, so install and uninstall can find exactly theirs. */
export const CRD_PART_OF_LABEL = 'app.kubernetes.io/part-of';

/** The CRD of one custom kind, each served version with the schema of that version. */
export function customResourceDefinition(def: KindDefinition): CustomResourceDefinition {
  if (def.kubernetes) throw new TypeError(`${def.kind} is a Kubernetes kind: it has no CRD`);
  const storage = STORAGE_VERSION[def.kind] ?? def.versions[0]!;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${def.group}`, labels: { [CRD_PART_OF_LABEL]: 'strait' } },
    spec: {
      group: def.group,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        ...(def.shortNames.length > 0 ? { shortNames: [...def.shortNames] } : {}),
        categories: ['strait'],
      },
      scope: def.namespaced ? 'Namespaced' : 'Cluster',
      versions: def.versions.map((name) => ({
        name,
        served: true,
        storage: name === storage,
        schema: { openAPIV3Schema: objectSchemaOf(def.schema(name)) },
        subresources: { status: {} },
      })),
    },
  };
}

/** A CRD for every custom kind. */
export function customResourceDefinitions(): CustomResourceDefinition[] {
  return CUSTOM_KINDS.map(customResourceDefinition);
}

/** The CRD that defines `kind`, if Strait defines it. */
export function customResourceDefinitionOf(kind: string): CustomResourceDefinition | undefined {
  const def = kindNamed(kind);
  return def && !def.kubernetes ? customResourceDefinition(def) : undefined;
}

// ---- zod → structural schema ----

/** JSON Schema as `z.toJSONSchema` writes it (draft 2020-12). */
interface JsonSchema {
  type?: string | string[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  required?: string[];
  [key: string]: unknown;
}

const PRESERVE: JSONSchemaProps = { 'x-kubernetes-preserve-unknown-fields': true };
const SCALAR_KEYWORDS = ['description', 'enum', 'default', 'minLength', 'maxLength', 'minItems', 'maxItems', 'pattern'] as const;
/** Formats Kubernetes validates; others (zod's `email`, `uuid`, …) are left to Strait's own checks. */
const KUBERNETES_FORMATS = new Set(['int32', 'int64', 'float', 'double', 'byte', 'date', 'date-time', 'password']);

/**
 * The OpenAPI schema of a whole custom object: its own fields as the zod schema gives them, with
 * metadata left to the API server (at the root it may only restrict name) and a free-form status.
 */
function objectSchemaOf(schema: z.ZodType): JSONSchemaProps {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const root = structural(json, json.$defs ?? {}, []);
  const own = Object.fromEntries(Object.entries(root.properties ?? {}).filter(([name]) => !['apiVersion', 'kind', 'metadata', 'status'].includes(name)));
  const required = (root.required ?? []).filter((name) => name in own);
  return {
    type: 'object',
    properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...own, status: { type: 'object', ...PRESERVE } },
    ...(required.length > 0 ? { required } : {}),
  };
}

/**
 * Rewrites JSON Schema into the structural subset a CRD accepts: every node has one type, no
 * `$ref` (a recursive schema is cut at its first repetition, where any fields are kept), no
 * unions (integer-or-string becomes `x-kubernetes-int-or-string`, other unions keep any value),
 * `additionalProperties` only as a map's value schema.
 */
export function structural(node: JsonSchema, defs: Record<string, JsonSchema>, seen: readonly string[]): JSONSchemaProps {
  if (node.$ref !== undefined) {
    const name = node.$ref.replace(/^#\/\$defs\//, '');
    const target = defs[name];
    if (!target || seen.includes(name)) return { type: 'object', ...PRESERVE };
    return { ...structural(target, defs, [...seen, name]), ...scalarKeywords(node) };
  }
  const branches = node.anyOf ?? node.oneOf;
  if (branches) {
    const nonNull = branches.filter((b) => b.type !== 'null');
    const nullable = nonNull.length < branches.length ? { nullable: true as const } : {};
    if (nonNull.length === 1) return { ...structural(nonNull[0]!, defs, seen), ...scalarKeywords(node), ...nullable };
    return { ...union(nonNull.map((b) => b.type)), ...scalarKeywords(node), ...nullable };
  }
  if (node.allOf?.length === 1) return structural(node.allOf[0]!, defs, seen);
  if (Array.isArray(node.type)) {
    const types = node.type.filter((t) => t !== 'null');
    const nullable = types.length < node.type.length ? { nullable: true as const } : {};
    if (types.length === 1) return structural({ ...node, type: types[0] }, defs, seen);
    return { ...union(types), ...scalarKeywords(node), ...nullable };
  }
  const base = scalarKeywords(node);
  if (node.const !== undefined) base.enum = [node.const];
  switch (node.type) {
    case 'object': {
      if (node.properties) {
        const properties = Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, structural(v, defs, seen)]));
        return { type: 'object', ...base, properties, ...(node.required?.length ? { required: [...node.required] } : {}) };
      }
      if (typeof node.additionalProperties === 'object') return { type: 'object', ...base, additionalProperties: structural(node.additionalProperties, defs, seen) };
      return { type: 'object', ...base, ...PRESERVE };
    }
    case 'array':
      return { type: 'array', ...base, items: node.items ? structural(node.items, defs, seen) : PRESERVE };
    case 'string':
    case 'boolean':
    case 'number':
      return { type: node.type, ...base, ...format(node) };
    case 'integer':
      return { type: 'integer', ...base, ...bounds(node), ...format(node) };
    case 'null':
    case undefined:
      // `z.unknown()` and the like: any value.
      return { ...base, ...PRESERVE };
    default:
      throw new TypeError(`no OpenAPI type for JSON Schema type ${JSON.stringify(node.type)}`);
  }
}

/** A value of several types: integer-or-string has its own marker; anything else keeps any value. */
function union(types: (string | string[] | undefined)[]): JSONSchemaProps {
  const set = new Set(types.flat());
  if (set.size === 2 && set.has('integer') && set.has('string')) return { 'x-kubernetes-int-or-string': true };
  return PRESERVE;
}

function scalarKeywords(node: JsonSchema): JSONSchemaProps {
  const out: Record<string, unknown> = {};
  for (const key of SCALAR_KEYWORDS) if (node[key] !== undefined) out[key] = node[key];
  return out;
}

/** Integer bounds, except zod's ±2^53-1 for every integer: Kubernetes' integers are int64. */
function bounds(node: JsonSchema): JSONSchemaProps {
  const out: JSONSchemaProps = {};
  if (typeof node.minimum === 'number' && node.minimum !== Number.MIN_SAFE_INTEGER) out.minimum = node.minimum;
  if (typeof node.maximum === 'number' && node.maximum !== Number.MAX_SAFE_INTEGER) out.maximum = node.maximum;
  return out;
}

function format(node: JsonSchema): JSONSchemaProps {
  return typeof node.format === 'string' && KUBERNETES_FORMATS.has(node.format) ? { format: node.format } : {};
}
