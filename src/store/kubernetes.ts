// The store over a Kubernetes API server: the same interface as the local store, each kind reached
// at the REST coordinates api/crds.ts gives it (Strait's own kinds as the CRDs it defines).
//
// What differs from the local store, because the API server has no transactions:
// - `apply` writes objects one by one (server-side apply, field manager `strait`); when one fails,
//   the objects already written are put back as they were (created ones deleted, changed ones
//   restored unless someone changed them since), then the error is thrown. Another client can see
//   the objects written before the failure for that moment.
// - `delete` checks every resourceVersion precondition before deleting any, and each delete
//   carries its precondition again; a change between the check and the delete fails that delete.
// - `watch` needs a kind (there is no watch of every kind), and without a resourceVersion it
//   starts from the version a list returns now, so it delivers changes from now on.
import { type KindRoute, kindRoute, routeApiVersion } from '../api/crds.js';
import { formatSelector } from '../api/labels.js';
import { parseQuantity } from '../api/quantity.js';
import { describeRef, type Resource, type ResourceRef } from '../api/types.js';
import { KubeRest, type KubeConnection } from './kube-rest.js';
import { KubeWatch } from './kube-watch.js';
import {
  ConflictError,
  type ApplyResult,
  type DeleteRef,
  type DeleteResult,
  type ListOptions,
  type ListResult,
  type Store,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from './store.js';

export const FIELD_MANAGER = 'strait';
/** Objects per page of a list. */
const PAGE = 500;

interface KubeList {
  metadata: { resourceVersion: string; continue?: string };
  items: Resource[];
}

/** Where an object of a kind lives, at one version. */
export function collectionPath(route: KindRoute, version: string, namespace: string | undefined): string {
  const base = route.group === '' ? `/api/${version}` : `/apis/${route.group}/${version}`;
  return route.namespaced && namespace !== undefined ? `${base}/namespaces/${encodeURIComponent(namespace)}/${route.plural}` : `${base}/${route.plural}`;
}

/** The kind's route; a kind the table lacks is refused (the API server would not know where it lives). */
export function routeOf(kind: string): KindRoute {
  const route = kindRoute(kind);
  if (!route) throw new TypeError(`kind ${kind} is not served by the Kubernetes store`);
  return route;
}

/**
 * An object as the API server returns it, as Strait reads it: apiVersion and kind set (list items
 * lack them), no managedFields, and TrafficSplit weights as numbers whatever version wrote them
 * (the CRD serves its versions without conversion, so a v1alpha1 `500m` reads back as that string).
 */
export function decode(raw: Resource, route: KindRoute): Resource {
  const { managedFields: _managed, ...metadata } = raw.metadata as Resource['metadata'] & { managedFields?: unknown };
  const object: Resource = { ...raw, apiVersion: raw.apiVersion ?? routeApiVersion(route), kind: raw.kind ?? route.kind, metadata };
  if (route.kind === 'TrafficSplit') {
    const spec = object.spec as { backends?: { weight?: unknown }[] } | undefined;
    if (spec?.backends?.some((b) => typeof b.weight === 'string')) {
      object.spec = { ...spec, backends: spec.backends.map((b) => ({ ...b, weight: parseQuantity(b.weight) ?? b.weight })) };
    }
  }
  return object;
}

export class KubernetesStore implements Store {
  private readonly watches = new Set<KubeWatch>();

  private constructor(readonly rest: KubeRest) {}

  static async connect(connection: KubeConnection = {}): Promise<KubernetesStore> {
    return new KubernetesStore(await KubeRest.connect(connection));
  }

  async get(ref: ResourceRef): Promise<Resource | undefined> {
    const route = routeOf(ref.kind);
    const raw = await this.rest.requestOrMissing<Resource>('GET', this.objectPath(route, route.version, ref.namespace, ref.name));
    return raw && decode(raw, route);
  }

  async list(kind: string, opts: ListOptions = {}): Promise<ListResult> {
    const route = routeOf(kind);
    const path = collectionPath(route, route.version, opts.namespace);
    const items: Resource[] = [];
    let resourceVersion: string | undefined;
    let next: string | undefined;
    do {
      const page = await this.rest.request<KubeList>('GET', path, { query: { labelSelector: selectorText(opts.labelSelector), limit: String(PAGE), continue: next } });
      // Every page is of the first page's snapshot.
      resourceVersion ??= page.metadata.resourceVersion;
      for (const item of page.items) items.push(decode(item, route));
      next = page.metadata.continue || undefined;
    } while (next);
    return { items, resourceVersion };
  }

  async apply(objects: Resource[]): Promise<ApplyResult[]> {
    const written: { result: ApplyResult; previous: Resource | undefined; path: string }[] = [];
    try {
      for (const object of objects) {
        const route = routeOf(object.kind);
        const path = this.objectPath(route, versionOf(object, route), object.metadata.namespace, object.metadata.name);
        const previous = await this.rest.requestOrMissing<Resource>('GET', path);
        const wanted = object.metadata.resourceVersion;
        if (wanted !== undefined && previous?.metadata.resourceVersion !== wanted) {
          throw new ConflictError(`${describeRef({ kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name })}: resourceVersion ${wanted} is not the stored one (${previous?.metadata.resourceVersion ?? 'none'})`);
        }
        const applied = await this.rest.request<Resource>('PATCH', path, {
          query: { fieldManager: FIELD_MANAGER, force: 'true' },
          body: applyBody(object, route),
          contentType: 'application/apply-patch+yaml',
        });
        const outcome = !previous ? 'created' : applied.metadata.resourceVersion === previous.metadata.resourceVersion ? 'unchanged' : 'configured';
        written.push({ result: { outcome, object: decode(applied, route) }, previous, path });
      }
    } catch (err) {
      await this.rollBack(written);
      throw err;
    }
    return written.map((w) => w.result);
  }

  async updateStatus(ref: ResourceRef, status: unknown): Promise<Resource> {
    const route = routeOf(ref.kind);
    // Replaces the whole status, as the local store does (a merge patch would merge maps).
    const raw = await this.rest.request<Resource>('PATCH', `${this.objectPath(route, route.version, ref.namespace, ref.name)}/status`, {
      body: [{ op: 'add', path: '/status', value: status ?? {} }],
      contentType: 'application/json-patch+json',
    });
    return decode(raw, route);
  }

  async delete(refs: DeleteRef[]): Promise<DeleteResult[]> {
    for (const ref of refs) {
      if (ref.resourceVersion === undefined) continue;
      const current = await this.get(ref);
      if (current && current.metadata.resourceVersion !== ref.resourceVersion) {
        throw new ConflictError(`${describeRef(ref)}: resourceVersion ${ref.resourceVersion} is not the stored one (${current.metadata.resourceVersion}); nothing deleted`);
      }
    }
    const results: DeleteResult[] = [];
    for (const ref of refs) {
      const route = routeOf(ref.kind);
      const options = {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        propagationPolicy: 'Background',
        ...(ref.resourceVersion !== undefined ? { preconditions: { resourceVersion: ref.resourceVersion } } : {}),
      };
      const gone = await this.rest.requestOrMissing('DELETE', this.objectPath(route, route.version, ref.namespace, ref.name), { body: options });
      const { resourceVersion: _rv, ...plain } = ref;
      results.push({ ref: plain, deleted: gone !== undefined });
    }
    return results;
  }

  watch(opts: WatchOptions, onEvent: (e: WatchEvent) => void | Promise<void>, onError?: (err: Error) => void): Watch {
    if (!opts.kind) throw new TypeError('watch: the Kubernetes store watches one kind at a time; name it');
    const route = routeOf(opts.kind);
    const watch = new KubeWatch({
      rest: this.rest,
      path: collectionPath(route, route.version, opts.namespace),
      labelSelector: selectorText(opts.labelSelector),
      resourceVersion: opts.resourceVersion,
      decode: (raw) => decode(raw, route),
      onEvent,
      onError: (err) => {
        this.watches.delete(watch);
        onError?.(err);
      },
    });
    this.watches.add(watch);
    watch.start();
    return {
      stop: () => {
        this.watches.delete(watch);
        watch.stop();
      },
    };
  }

  close(): Promise<void> {
    for (const watch of this.watches) watch.stop();
    this.watches.clear();
    this.rest.close();
    return Promise.resolve();
  }

  private objectPath(route: KindRoute, version: string, namespace: string | undefined, name: string): string {
    return `${collectionPath(route, version, route.namespaced ? (namespace ?? 'default') : undefined)}/${encodeURIComponent(name)}`;
  }

  /** Puts back what an apply wrote, newest first: created objects deleted, changed ones restored. */
  private async rollBack(written: { result: ApplyResult; previous: Resource | undefined; path: string }[]): Promise<void> {
    for (const { result, previous, path } of written.reverse()) {
      const { uid, resourceVersion } = result.object.metadata;
      try {
        if (result.outcome === 'created') {
          await this.rest.requestOrMissing('DELETE', path, { body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid, resourceVersion } } });
        } else if (result.outcome === 'configured' && previous) {
          // Only if nobody changed it since: the update carries the version this apply wrote.
          await this.rest.request('PUT', path, { body: { ...previous, metadata: { ...previous.metadata, resourceVersion } } });
        }
      } catch (err) {
        process.emitWarning(`could not undo the write of ${path}: ${(err as Error).message}`, 'STRAIT_STORE');
      }
    }
  }
}

/** An object's apiVersion selects the version it is written as, when the kind serves it. */
function versionOf(object: Resource, route: KindRoute): string {
  const version = route.group === '' ? object.apiVersion : object.apiVersion.slice(route.group.length + 1);
  return route.versions.includes(version) ? version : route.version;
}

/** What server-side apply is sent: the object without what the API server owns. */
function applyBody(object: Resource, route: KindRoute): Resource {
  const { status: _status, ...rest } = object;
  const { uid: _uid, creationTimestamp: _created, generation: _generation, managedFields: _managed, ...metadata } = object.metadata as Resource['metadata'] & { managedFields?: unknown };
  return { ...rest, apiVersion: routeApiVersion(route, versionOf(object, route)), metadata: route.namespaced ? { ...metadata, namespace: metadata.namespace ?? 'default' } : metadata };
}

function selectorText(selector: ListOptions['labelSelector']): string | undefined {
  if (selector === undefined) return undefined;
  const text = typeof selector === 'string' ? selector : formatSelector(selector);
  return text === '' ? undefined : text;
}
