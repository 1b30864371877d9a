// Manifest validation: every document checked against Kubernetes' schema (or the custom resource's),
// then against what Strait needs, with defaults applied as Kubernetes applies them. All or nothing:
// the caller gets every object, or every problem and no object.
import type { z } from 'zod';
import { describeValue, isObject, type ManifestDocument } from './codec.js';
import { ANY, fieldsOutside, zodShape, type FieldShape } from './fields.js';
import { ManifestIssue, type FieldPath } from './issues.js';
import { findKind, KINDS, kindNamed } from './kinds.js';
import { apiVersionOf, checkAnnotations, checkLabels, checkName, ObjectMetaSchema, type KindDefinition, type Report } from './kinds/define.js';
import { kubernetesSchemaIssues, kubernetesShape } from './kubernetes-schema.js';
import { dns1123LabelError } from './names.js';
import { closest, didYouMean } from './suggest.js';
import type { Resource } from './types.js';

export type ValidationResult = { ok: true; resources: Resource[] } | { ok: false; errors: ManifestIssue[] };

/**
 * Validates documents and returns them as resources with Kubernetes' defaults applied (Service port
 * protocol TCP, targetPort = port, type ClusterIP; replicas 1; …), or every problem found in any
 * document. Fields Kubernetes defines but Strait does not use are kept; `ignoredFields()` lists them.
 * `metadata.namespace` is left as written: see `applyNamespace()`.
 */
export async function validateDocuments(docs: readonly ManifestDocument[]): Promise<ValidationResult> {
  const resources: Resource[] = [];
  const errors: ManifestIssue[] = [];
  for (const doc of docs) {
    const { resource, issues } = await validateDocument(doc);
    if (resource) resources.push(resource);
    errors.push(...issues);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, resources };
}

async function validateDocument(doc: ManifestDocument): Promise<{ resource?: Resource; issues: ManifestIssue[] }> {
  const body = doc.body;
  const kind = isObject(body) && typeof body.kind === 'string' ? body.kind : undefined;
  const name = isObject(body) && isObject(body.metadata) && typeof body.metadata.name === 'string' ? body.metadata.name : undefined;
  const issues: ManifestIssue[] = [];
  const reported: FieldPath[] = [];
  // One issue per field: Kubernetes' schema and Strait's may both object to the same field, or to a
  // field and its parent. The first report stands: unknown fields, then Kubernetes' schema, then Strait's.
  const report: Report = (path, reason) => {
    if (reported.some((p) => isPrefix(p, path) || isPrefix(path, p))) return;
    reported.push(path);
    issues.push(new ManifestIssue({ source: doc.source, index: doc.index, item: doc.item, kind, name, path, reason }));
  };

  if (!isObject(body)) {
    report([], `expected an object with apiVersion and kind, got ${describeValue(body)}`);
    return { issues };
  }
  const def = resolveDocumentKind(body, report);
  if (!def) return { issues };
  const version = (body.apiVersion as string).slice(def.group === '' ? 0 : def.group.length + 1);
  const schema = def.schema(version);

  const [defined, official] = await Promise.all([definedFields(def, schema), kubernetesSchemaIssues(def, body)]);
  for (const field of fieldsOutside(body, defined, false)) {
    const key = String(field.path[field.path.length - 1]);
    report(field.path, `unknown field ${JSON.stringify(key)}${didYouMean(key, field.known)}`);
  }
  for (const issue of official) report(issue.path, issue.reason);

  const parsed = schema.safeParse(body, { reportInput: true, error: standardMessage });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) report(issue.path as FieldPath, withInput(issue.message, issue));
    // The kind's own checks need a whole object; the name and labels can still be checked.
    const metadata = ObjectMetaSchema.safeParse(body.metadata);
    if (metadata.success) checkMetadata(def, metadata.data, report);
    return { issues };
  }
  const object = parsed.data as Resource;
  checkMetadata(def, object.metadata, report);
  def.check?.(object, report);
  if (issues.length > 0) return { issues };
  return { resource: overlay(body, object) as Resource, issues };
}

/** The kind of a document, or a report of why there is none (with the nearest kind or apiVersion). */
function resolveDocumentKind(body: Record<string, unknown>, report: Report): KindDefinition | undefined {
  const { apiVersion, kind } = body;
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    report(['apiVersion'], apiVersion === undefined ? 'required field is missing' : `must be a non-empty string, got ${describeValue(apiVersion)}`);
  }
  if (typeof kind !== 'string' || kind === '') {
    report(['kind'], kind === undefined ? 'required field is missing' : `must be a non-empty string, got ${describeValue(kind)}`);
  }
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || apiVersion === '' || kind === '') return undefined;
  const def = findKind(apiVersion, kind);
  if (def) return def;
  const sameKind = kindNamed(kind);
  if (sameKind) {
    const served = sameKind.versions.map((v) => apiVersionOf(sameKind, v)).join(', ');
    report(['apiVersion'], `${kind} is served as ${served}, not ${JSON.stringify(apiVersion)}`);
  } else {
    const nearest = closest(kind, KINDS.map((k) => k.kind));
    report(
      ['kind'],
      nearest
        ? `unknown kind ${JSON.stringify(kind)}; did you mean "${nearest}" (${apiVersionOf(kindNamed(nearest)!)})?`
        : `unknown kind ${JSON.stringify(kind)} (${apiVersion}); Strait serves ${KINDS.map((k) => k.kind).join(', ')}`,
    );
  }
  return undefined;
}

/**
 * Every field an object of this kind may have: Kubernetes' definition for its own kinds; for custom
 * resources, the kind's schema, with Kubernetes' metadata and a free-form status.
 */
async function definedFields(def: KindDefinition, schema: z.ZodType): Promise<FieldShape> {
  if (def.kubernetes) return kubernetesShape(def.kubernetes.openApiType);
  const own = zodShape(schema);
  if (own.type !== 'object') return own;
  const metadata = await kubernetesShape('V1ObjectMeta');
  return { type: 'object', fields: new Map([...own.fields, ['metadata', () => metadata], ['status', () => ANY]]) };
}

function checkMetadata(def: KindDefinition, meta: Resource['metadata'], report: Report): void {
  checkName(def.nameRule, meta.name, ['metadata', 'name'], report);
  if (def.namespaced && meta.namespace !== undefined) {
    const error = dns1123LabelError(meta.namespace);
    if (error) report(['metadata', 'namespace'], `${JSON.stringify(meta.namespace)} ${error}`);
  }
  checkLabels(meta.labels, ['metadata', 'labels'], report);
  checkAnnotations(meta.annotations, ['metadata', 'annotations'], report);
}

/** Reasons for zod's issues, worded like the rest of Strait's messages; a schema's own message wins. */
const standardMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'required field is missing' : `must be ${expectedName(issue.expected)}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item${issue.minimum === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} items`;
      return `must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_union':
      return issue.input === undefined ? 'required field is missing' : undefined;
    default:
      return undefined;
  }
};

function expectedName(expected: string): string {
  const names: Record<string, string> = {
    string: 'a string',
    number: 'a number',
    int: 'an integer',
    boolean: 'a boolean (true or false)',
    array: 'a list',
    object: 'an object',
    record: 'an object',
  };
  return names[expected] ?? expected;
}

/** Appends the offending value (`, got -1`) to a reason, unless it is missing or a whole list/object. */
function withInput(reason: string, issue: z.core.$ZodIssue): string {
  const input = issue.input;
  if (input === undefined || reason.includes(', got ')) return reason;
  if ((Array.isArray(input) || isObject(input)) && issue.code !== 'invalid_type') return reason;
  return `${reason}, got ${describeValue(input)}`;
}

/** The user's object with the parsed values laid over it: defaults and normalised values added, other fields kept. */
function overlay(raw: unknown, parsed: unknown): unknown {
  if (Array.isArray(parsed) && Array.isArray(raw)) return parsed.map((p, i) => overlay(raw[i], p));
  if (isObject(parsed) && isObject(raw)) {
    const out: Record<string, unknown> = { ...raw };
    for (const [k, v] of Object.entries(parsed)) out[k] = overlay(raw[k], v);
    return out;
  }
  return parsed;
}

function isPrefix(prefix: FieldPath, path: FieldPath): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => p === path[i]);
}
