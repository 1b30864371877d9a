// Kubernetes' own schemas for the kinds it defines, so manifests are checked as a cluster would check
// them. Values (types, required fields, enums, formats) are checked by the official OpenAPI schemas
// compiled in `kubernetes-models`. Those schemas do not reject unknown fields, so the set of fields
// each type defines comes from the OpenAPI models generated in `@kubernetes/client-node`. Both are
// loaded on first use: only commands that validate manifests pay for them.
import { describeValue, isObject } from './codec.js';
import { ANY, type FieldShape } from './fields.js';
import type { FieldPath } from './issues.js';
import type { KindDefinition } from './kinds/define.js';

// ---- the fields each type defines ----

interface Attribute {
  baseName: string;
  type: string;
}

const attributes = new Map<string, readonly Attribute[]>();
const closures = new Map<string, Promise<void>>();
const NOT_MODELS = new Set(['Date', 'IntOrString']);

/** OpenAPI model names a type string refers to: `Array<V1Container>` → V1Container. */
function referencedModel(type: string): string | undefined {
  const inner = /^Array<(.+)>$/.exec(type)?.[1] ?? /^\{ \[key: string\]: (.+); \}$/.exec(type)?.[1];
  if (inner !== undefined) return referencedModel(inner);
  return /^[A-Z]\w*$/.test(type) && !NOT_MODELS.has(type) ? type : undefined;
}

/** Loads `root` and every type reachable from it, breadth first (cycles are fine). */
function loadClosure(root: string): Promise<void> {
  let loading = closures.get(root);
  if (!loading) {
    loading = (async () => {
      let pending = [root];
      while (pending.length > 0) {
        const batch = pending.filter((name) => !attributes.has(name));
        const loaded = await Promise.all(
          batch.map(async (name) => {
            const module = (await import(`@kubernetes/client-node/dist/gen/models/${name}.js`)) as Record<string, { attributeTypeMap: Attribute[] }>;
            return [name, module[name]!.attributeTypeMap] as const;
          }),
        );
        for (const [name, attrs] of loaded) attributes.set(name, attrs);
        pending = [...new Set(loaded.flatMap(([, attrs]) => attrs.map((a) => referencedModel(a.type)).filter((t) => t !== undefined)))];
      }
    })();
    closures.set(root, loading);
  }
  return loading;
}

function shapeOfType(type: string): FieldShape {
  const list = /^Array<(.+)>$/.exec(type)?.[1];
  if (list !== undefined) return { type: 'list', item: () => shapeOfType(list) };
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type)?.[1];
  if (map !== undefined) return { type: 'map', value: () => shapeOfType(map) };
  const attrs = attributes.get(type);
  if (!attrs) return ANY;
  return { type: 'object', fields: new Map(attrs.map((a) => [a.baseName, () => shapeOfType(a.type)])) };
}

/** The fields Kubernetes defines for an OpenAPI type (`V1Deployment`, `V1ObjectMeta`), at every depth. */
export async function kubernetesShape(openApiType: string): Promise<FieldShape> {
  await loadClosure(openApiType);
  return shapeOfType(openApiType);
}

// ---- value checks ----

export interface SchemaIssue {
  path: FieldPath;
  reason: string;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: { missingProperty?: string; type?: string; allowedValues?: unknown[]; format?: string };
  message?: string;
}

/** Checks an object of a Kubernetes-defined kind against the official schema; [] when it conforms. */
export async function kubernetesSchemaIssues(def: KindDefinition, object: Record<string, unknown>): Promise<SchemaIssue[]> {
  if (!def.kubernetes) return [];
  const Model = await def.kubernetes.model();
  try {
    new Model(object as never).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors)) throw err;
    return describeAjvErrors(errors, object);
  }
}

/** One issue per field: IntOrString's `oneOf` failures become "must be an integer or a string". */
function describeAjvErrors(errors: AjvError[], root: unknown): SchemaIssue[] {
  const byPath = new Map<string, { path: FieldPath; errors: AjvError[] }>();
  for (const error of errors) {
    let path = pointerToPath(error.instancePath, root);
    if (error.keyword === 'required' && error.params.missingProperty) path = [...path, error.params.missingProperty];
    const key = JSON.stringify(path);
    const entry = byPath.get(key) ?? { path, errors: [] };
    entry.errors.push(error);
    byPath.set(key, entry);
  }
  return [...byPath.values()].map(({ path, errors: errs }) => {
    const value = valueAt(root, path);
    if (errs.some((e) => e.keyword === 'oneOf')) {
      const types = errs.filter((e) => e.keyword === 'type').map((e) => typeName(e.params.type ?? ''));
      return { path, reason: `must be ${types.join(' or ')}, got ${describeValue(value)}` };
    }
    return { path, reason: describeAjvError(errs[0]!, value) };
  });
}

function describeAjvError(error: AjvError, value: unknown): string {
  switch (error.keyword) {
    case 'required':
      return 'required field is missing';
    case 'type':
      return `must be ${typeName(error.params.type ?? '')}, got ${describeValue(value)}`;
    case 'enum':
      return `must be one of ${(error.params.allowedValues ?? []).map(String).join(', ')}, got ${describeValue(value)}`;
    case 'format':
      return `must be ${formatName(error.params.format ?? '')}, got ${describeValue(value)}`;
    default:
      return `${error.message ?? 'is invalid'}, got ${describeValue(value)}`;
  }
}

function typeName(type: string): string {
  const names: Record<string, string> = {
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'a boolean (true or false)',
    object: 'an object',
    array: 'a list',
  };
  return names[type] ?? type;
}

function formatName(format: string): string {
  const names: Record<string, string> = { int32: 'a 32-bit integer', int64: 'a 64-bit integer', 'date-time': 'an RFC 3339 date-time', byte: 'base64 data' };
  return names[format] ?? `in ${format} format`;
}

/** `/spec/ports/0/port` → ["spec", "ports", 0, "port"]: a segment is an index where the value there is a list. */
function pointerToPath(pointer: string, root: unknown): FieldPath {
  const path: (string | number)[] = [];
  let value = root;
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value) && /^\d+$/.test(segment)) {
      path.push(Number(segment));
      value = value[Number(segment)];
    } else {
      path.push(segment);
      value = isObject(value) ? value[segment] : undefined;
    }
  }
  return path;
}

function valueAt(root: unknown, path: FieldPath): unknown {
  let value = root;
  for (const part of path) {
    if (typeof part === 'number' && Array.isArray(value)) value = value[part];
    else if (typeof part === 'string' && isObject(value)) value = value[part];
    else return undefined;
  }
  return value;
}
