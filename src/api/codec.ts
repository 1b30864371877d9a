// Manifest text in and out: multi-document YAML (or JSON) to plain objects, and objects to `-o yaml|json`.
//
// Documents are numbered by their position in the YAML stream, counting empty ones (a bare `---`, a
// document of comments only): "document 3" is the third `---`-separated section a reader counts in
// the file. Empty documents produce no object. A `List` (`kind: List` or any `*List` with `items`,
// as `kubectl get -o yaml` writes) contributes one object per item, numbered "document N, item M".
import { parseAllDocuments, stringify, type DocumentOptions, type ParseOptions, type SchemaOptions, type ToStringOptions } from 'yaml';
import { ManifestError, ManifestIssue, type DocumentOrigin } from './issues.js';

/** One object read from a manifest, with where it came from. */
export interface ManifestDocument extends DocumentOrigin {
  /** The object, with null fields removed (Kubernetes treats `field: null` as absent). */
  body: unknown;
}

// YAML 1.1 as kubectl reads it: `yes`/`no`/`on`/`off` are booleans, `0755` is octal. Timestamps stay
// strings, since Kubernetes fields that hold times are strings in JSON.
const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions & ToStringOptions = {
  version: '1.1',
  customTags: (tags) => tags.filter((t) => typeof t === 'string' || t.tag !== 'tag:yaml.org,2002:timestamp'),
  lineWidth: 0,
  indentSeq: false,
};

/**
 * Parses manifest text (YAML documents separated by `---`, or JSON) into documents.
 * Throws `ManifestError` listing every syntax error (file, document, line and column), or a document
 * that is not an object.
 */
export function parseManifests(text: string, source: string): ManifestDocument[] {
  const documents: ManifestDocument[] = [];
  const issues: ManifestIssue[] = [];
  parseAllDocuments(text, YAML_OPTIONS).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const at = error.linePos?.[0];
        // The library's message ends with " at line L, column C:" and a snippet; we say where ourselves.
        const reason = error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
        issues.push(new ManifestIssue({ source, index, line: at?.line, column: at?.col, reason }));
      }
      return;
    }
    const body = dropNulls(doc.toJS({ maxAliasCount: 100 }));
    if (body === undefined) return; // an empty document
    if (!isObject(body)) {
      issues.push(new ManifestIssue({ source, index, reason: `expected an object with apiVersion and kind, got ${describeValue(body)}` }));
      return;
    }
    if (Array.isArray(body.items) && typeof body.kind === 'string' && body.kind.endsWith('List')) {
      body.items.forEach((item: unknown, i) => {
        if (isObject(item)) documents.push({ source, index, item: i, body: item });
        else issues.push(new ManifestIssue({ source, index, item: i, reason: `expected an object with apiVersion and kind, got ${describeValue(item)}` }));
      });
      return;
    }
    documents.push({ source, index, body });
  });
  if (issues.length > 0) throw new ManifestError(issues);
  return documents;
}

/** Documents for objects that did not come from text (an API request, a test), numbered in order. */
export function toDocuments(objects: readonly unknown[], source: string): ManifestDocument[] {
  return objects.map((body, index) => ({ source, index, body: dropNulls(body) }));
}

/** `-o yaml`: one object as YAML, keys of objects in kubectl's order. */
export function toYaml(value: unknown): string {
  return stringify(orderKeys(value), YAML_OPTIONS);
}

/** `-o json`: one object as indented JSON (as kubectl prints it), keys in kubectl's order. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(orderKeys(value), null, 4)}\n`;
}

/** Several objects as one, the way `kubectl get -o yaml` prints a list. */
export function listOf(items: readonly unknown[]): { apiVersion: 'v1'; kind: 'List'; metadata: { resourceVersion: string }; items: unknown[] } {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: [...items] };
}

const LEADING_KEYS = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];

/** Objects that are resources (they have a `kind`) print apiVersion, kind, metadata, spec, status first. */
function orderKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(orderKeys);
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  const ordered = 'kind' in value ? [...LEADING_KEYS.filter((k) => k in value), ...keys.filter((k) => !LEADING_KEYS.includes(k))] : keys;
  return Object.fromEntries(ordered.map((k) => [k, orderKeys(value[k])]));
}

/** Removes null-valued fields at every depth; `undefined` for a null document. */
function dropNulls(value: unknown): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.map((v) => (v === null ? null : dropNulls(v)));
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== null) out[k] = dropNulls(v);
  }
  return out;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short description of a value for messages: `-1`, `"abc"`, `a list`, `an object`. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (isObject(value)) return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}
