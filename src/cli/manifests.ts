// Reading manifests for apply/delete: files, directories and stdin, validated whole before anything
// reaches a cluster.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseManifests, toDocuments, type ManifestDocument } from '../api/codec.js';
import { ManifestError, ManifestIssue, type FieldPath } from '../api/issues.js';
import { matchesSelector, SelectorSyntaxError } from '../api/labels.js';
import { applyNamespace, NamespaceMismatchError } from '../api/namespace.js';
import type { Resource } from '../api/types.js';
import { validateDocuments } from '../api/validate.js';
import { CliError, UsageError } from './context.js';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

function filesIn(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (recursive) out.push(...filesIn(path, recursive));
    } else if (MANIFEST_EXTENSIONS.has(extname(name))) out.push(path);
  }
  return out;
}

function readSource(path: string, recursive: boolean): { source: string; text: string }[] {
  if (path === '-') return [{ source: '-', text: readFileSync(0, 'utf8') }];
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new CliError(`the path "${path}" does not exist`);
  }
  if (!isDir) return [{ source: path, text: readFileSync(path, 'utf8') }];
  const files = filesIn(path, recursive);
  if (files.length === 0) throw new CliError(`no .yaml, .yml or .json files in ${path}${recursive ? '' : ' (use -R for subdirectories)'}`);
  return files.map((f) => ({ source: f, text: readFileSync(f, 'utf8') }));
}

export interface ReadOptions {
  /** `-n`: fills namespaced objects that name none, and must agree with those that do. */
  namespace?: string;
  /** `-l`: keep only the objects whose labels match. */
  selector?: string;
  recursive?: boolean;
  /** Objects built by a command rather than read from a file. */
  documents?: Resource[];
  /** Checks beyond the manifests themselves (against the mesh), on each valid object; any problem refuses them all. */
  check?: (object: Resource) => ObjectProblem[] | Promise<ObjectProblem[]>;
}

/** A problem with one field of an object, found by `ReadOptions.check`. */
export interface ObjectProblem {
  path: FieldPath;
  reason: string;
}

/** Every object in `paths`, validated and defaulted; throws on the first file with any problem. */
export async function readManifests(paths: string[], opts: ReadOptions = {}): Promise<Resource[]> {
  const docs: ManifestDocument[] = opts.documents ? toDocuments(opts.documents, 'command line') : [];
  for (const path of paths) for (const { source, text } of readSource(path, opts.recursive ?? false)) docs.push(...parseManifests(text, source));
  const result = await validateDocuments(docs);
  if (!result.ok) throw new ManifestError(result.errors);
  if (opts.check) await checkEach(docs, result.resources, opts.check);
  let resources = result.resources;
  if (opts.selector !== undefined) {
    try {
      resources = resources.filter((r) => matchesSelector(r.metadata.labels, opts.selector));
    } catch (err) {
      if (err instanceof SelectorSyntaxError) throw new UsageError(err.message);
      throw err;
    }
  }
  try {
    return applyNamespace(resources, opts.namespace);
  } catch (err) {
    if (err instanceof NamespaceMismatchError) throw new CliError(err.message);
    throw err;
  }
}

/** Runs `check` on every object (each valid document gave one, in order) and refuses them all with every problem found. */
async function checkEach(docs: ManifestDocument[], resources: Resource[], check: NonNullable<ReadOptions['check']>): Promise<void> {
  const issues: ManifestIssue[] = [];
  for (const [i, object] of resources.entries()) {
    const doc = docs[i]!;
    for (const { path, reason } of await check(object)) {
      issues.push(new ManifestIssue({ source: doc.source, index: doc.index, item: doc.item, kind: object.kind, name: object.metadata.name, path, reason }));
    }
  }
  if (issues.length > 0) throw new ManifestError(issues);
}
