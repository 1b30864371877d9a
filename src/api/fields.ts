// Which fields an object may have, and which of them Strait reads. Two sources describe fields: a
// kind's zod schema (Strait's view, and the whole schema of custom resource kinds) and Kubernetes'
// OpenAPI types (see kubernetes-schema.ts). Both are read through one small view, FieldShape.
import type { z } from 'zod';
import { isObject } from './codec.js';
import { kindOf } from './kinds.js';
import { ignoredByStrait } from './kinds/define.js';
import { formatPath, type FieldPath } from './issues.js';
import type { Resource } from './types.js';

/** The field structure of a schema, enough to tell which field names exist at each path. */
export type FieldShape =
  | { type: 'object'; fields: ReadonlyMap<string, () => FieldShape> }
  | { type: 'list'; item: () => FieldShape }
  | { type: 'map'; value: () => FieldShape }
  /** Declared, but not acted on by the local runtime. */
  | { type: 'ignored' }
  /** A scalar, or free-form content. */
  | { type: 'any' };

export const ANY: FieldShape = { type: 'any' };

/** A field of `value` that `shape` does not declare (or, if asked, declares as ignored). */
export interface OutsideField {
  path: FieldPath;
  /** The names that are declared at that level, for "did you mean". */
  known: string[];
}

/**
 * Fields present in `value` that `shape` does not declare. With `includeIgnored`, also fields that it
 * declares as ignored. Reports the outermost such field, not what lies under it.
 */
export function fieldsOutside(value: unknown, shape: FieldShape, includeIgnored: boolean, path: FieldPath = []): OutsideField[] {
  const out: OutsideField[] = [];
  const walk = (v: unknown, s: FieldShape, at: FieldPath): void => {
    if (s.type === 'object' && isObject(v)) {
      for (const [key, child] of Object.entries(v)) {
        const field = s.fields.get(key);
        if (!field) {
          out.push({ path: [...at, key], known: [...s.fields.keys()] });
          continue;
        }
        const fieldShape = field();
        if (fieldShape.type === 'ignored' && includeIgnored) out.push({ path: [...at, key], known: [] });
        else walk(child, fieldShape, [...at, key]);
      }
    } else if (s.type === 'list' && Array.isArray(v)) {
      v.forEach((item, i) => walk(item, s.item(), [...at, i]));
    } else if (s.type === 'map' && isObject(v)) {
      for (const [key, child] of Object.entries(v)) walk(child, s.value(), [...at, key]);
    }
  };
  walk(value, shape, path);
  return out;
}

interface ZodDefView {
  type: string;
  innerType?: z.ZodType;
  getter?: () => z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}

/** The field structure a zod schema declares; wrappers (optional, default, lazy, transforms) are looked through. */
export function zodShape(schema: z.ZodType): FieldShape {
  if (ignoredByStrait.has(schema)) return { type: 'ignored' };
  const def = schema._zod.def as unknown as ZodDefView;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return zodShape(def.innerType!);
    case 'lazy':
      return zodShape(def.getter!());
    case 'pipe':
      return zodShape(def.in!);
    case 'object':
      return { type: 'object', fields: new Map(Object.entries(def.shape!).map(([k, v]) => [k, () => zodShape(v)])) };
    case 'array':
      return { type: 'list', item: () => zodShape(def.element!) };
    case 'record':
      return { type: 'map', value: () => zodShape(def.valueType!) };
    default:
      return ANY;
  }
}

/**
 * Fields of a validated resource that the local runtime does not act on (`imagePullPolicy`,
 * `volumes`, `resources`, …), as paths like `spec.template.spec.containers[0].imagePullPolicy`, so
 * `describe` can say so. Status is the runtime's own and is not listed.
 */
export function ignoredFields(resource: Resource): string[] {
  const def = kindOf(resource);
  if (!def) return [];
  const version = resource.apiVersion.slice(resource.apiVersion.indexOf('/') + 1);
  const { status: _status, ...object } = resource;
  return fieldsOutside(object, zodShape(def.schema(version)), true).map((f) => formatPath(f.path));
}
