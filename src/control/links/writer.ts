// Writes one link's mirrors into the local store: holds what each remote service should look like
// here, watches what the store holds (the objects labelled as this link's), and writes only the
// difference, in batches — a remote exporting 10,000 services costs a few dozen transactions, and
// a change to one costs one. A mirror deleted or altered by hand is written again, as a Kubernetes
// controller would; a name already taken by an object that is not this link's is left alone and
// reported. Objects in a namespace this cluster does not have wait until it is created.
import type { Logger } from 'pino';
import { SLICE_MANAGED_BY_LABEL } from '../../api/kinds/endpointslice.js';
import { LINK_CONTROLLER_NAME, MIRROR_ANNOTATIONS, MIRROR_LABELS } from '../../api/kinds/strait.js';
import { refOf, type Resource } from '../../api/types.js';
import { Informer } from '../../store/informer.js';
import { WorkQueue } from '../../store/queue.js';
import type { Store, WatchEvent } from '../../store/store.js';
import { revisionOf } from '../discovery/compute.js';

/** Objects per store transaction. */
const BATCH = 500;
const RETRY_MS = { initialMs: 1000, maxMs: 1000 };

export interface MirrorWriterOptions {
  store: Store;
  /** The cluster whose services are mirrored (the Link's target). */
  cluster: string;
  log: Logger;
}

/** The label selectors that find every object of one link: its mirror Services and its EndpointSlices. */
export function mirrorSelectors(cluster: string): { Service: string; EndpointSlice: string } {
  return {
    Service: `${MIRROR_LABELS.mirroredService}=true,${MIRROR_LABELS.clusterName}=${cluster}`,
    EndpointSlice: `${MIRROR_LABELS.remoteCluster}=${cluster},${SLICE_MANAGED_BY_LABEL}=${LINK_CONTROLLER_NAME}`,
  };
}

/** Deletes every mirror of `cluster` (after its link is gone); returns how many objects. */
export async function removeMirrors(store: Store, cluster: string): Promise<number> {
  let removed = 0;
  for (const [kind, selector] of Object.entries(mirrorSelectors(cluster))) {
    const { items } = await store.list(kind, { labelSelector: selector });
    for (let i = 0; i < items.length; i += BATCH) {
      const results = await store.delete(items.slice(i, i + BATCH).map(refOf));
      removed += results.filter((r) => r.deleted).length;
    }
  }
  return removed;
}

const objectKey = (o: Resource) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const remoteKeyOf = (o: Resource) => o.metadata.annotations?.[MIRROR_ANNOTATIONS.remoteRef];

/** Digests by object: objects are replaced, never changed in place, so each is digested once. */
const digests = new WeakMap<Resource, string>();

/** What an object says, without what the store adds (uid, resourceVersion, timestamps, status). */
function contentOf(o: Resource): string {
  let digest = digests.get(o);
  if (digest === undefined) {
    const { metadata, status: _status, ...rest } = o;
    digest = revisionOf(canonical({ ...rest, metadata: { name: metadata.name, namespace: metadata.namespace, labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} } }));
    digests.set(o, digest);
  }
  return digest;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, canonical(v)]));
}

export class MirrorWriter {
  /** Remote service (`namespace/name`) → the objects it should have here. */
  private readonly desired = new Map<string, Resource[]>();
  /** Object key → the remote service whose object it is (first come, first served). */
  private readonly claims = new Map<string, string>();
  /** Remote service → the object keys it claims. */
  private readonly claimed = new Map<string, string[]>();
  /** Object key → the store's object, for every object of this link. */
  private readonly actual = new Map<string, Resource>();
  private readonly namespaces = new Set<string>();
  /** Remote services whose objects may differ from what they should be. */
  private readonly queue: WorkQueue<string>;
  /** Names taken by objects that are not this link's, by object key. */
  readonly conflicts = new Map<string, string>();
  /** This cluster's Namespaces, and the Services and EndpointSlices labelled as this link's. */
  private readonly informers: Informer[];
  /** Remote services `set` was told about: what it said is the truth about them. */
  private readonly heard = new Set<string>();
  /** Set by the first markAll: `desired` is then the whole truth, and objects it lacks are removed. */
  private authoritative = false;

  constructor(private readonly options: MirrorWriterOptions) {
    const { store, cluster, log } = options;
    const selectors = mirrorSelectors(cluster);
    const watched: [string, string | undefined][] = [['Namespace', undefined], ['Service', selectors.Service], ['EndpointSlice', selectors.EndpointSlice]];
    this.informers = watched.map(
      ([kind, labelSelector]) =>
        new Informer({
          store,
          kind,
          labelSelector,
          warn: (message) => log.warn(`link: ${message}`),
          onChange: (previous, current) => this.observe(current ? { type: previous ? 'MODIFIED' : 'ADDED', object: current } : { type: 'DELETED', object: previous! }),
          // Changes missed while the watch was down are passed on; make every mirror right as well.
          onResync: () => {
            if (this.authoritative) this.markAll();
          },
        }),
    );
    this.queue = new WorkQueue({
      retry: RETRY_MS,
      process: (keys) => this.flush(keys),
      onError: (err) => options.log.error({ err: err.message }, 'link: writing mirrors failed; trying again'),
    });
  }

  /** Reads what the store holds and starts watching it. */
  async start(): Promise<void> {
    // Namespaces first: a mirror is written only into a namespace this cluster has.
    for (const informer of this.informers) await informer.start();
  }

  async stop(): Promise<void> {
    for (const informer of this.informers) informer.stop();
    await this.queue.stop();
  }

  /** Sets what one remote service should have here (nothing: remove its objects). */
  set(remoteKey: string, objects: Resource[] | undefined): void {
    this.heard.add(remoteKey);
    for (const key of this.claimed.get(remoteKey) ?? []) this.claims.delete(key);
    this.claimed.delete(remoteKey);
    if (!objects || objects.length === 0) {
      this.desired.delete(remoteKey);
    } else {
      const mine = objects.filter((o) => {
        const key = objectKey(o);
        const owner = this.claims.get(key);
        if (owner !== undefined && owner !== remoteKey) {
          this.options.log.warn({ object: key, wanted: remoteKey, owner }, 'link: two remote services want the same mirror name; the first keeps it');
          return false;
        }
        this.claims.set(key, remoteKey);
        return true;
      });
      this.desired.set(remoteKey, mine);
      this.claimed.set(remoteKey, mine.map(objectKey));
    }
    this.mark(remoteKey);
  }

  /** The remote services that have objects here (or should). */
  get remoteServices(): number {
    return this.desired.size;
  }

  /**
   * Every remote service, and every one with objects here, is checked again. Call it once `set` has
   * been told everything the remote exports: from then on, objects of remote services that were
   * set are removed (before, a restarted link keeps what it wrote while it catches up).
   */
  markAll(): void {
    this.authoritative = true;
    this.queue.addAll(this.desired.keys());
    for (const object of this.actual.values()) {
      const key = remoteKeyOf(object);
      if (key !== undefined) this.queue.add(key);
    }
  }

  /** Resolves once every change asked for so far is written (or failed and scheduled again). */
  async settled(): Promise<void> {
    await this.queue.settled();
  }

  private mark(remoteKey: string): void {
    this.queue.add(remoteKey);
  }

  private observe(event: WatchEvent): void {
    const object = event.object;
    if (object.kind === 'Namespace') {
      if (event.type === 'DELETED') {
        this.namespaces.delete(object.metadata.name);
      } else if (!this.namespaces.has(object.metadata.name)) {
        this.namespaces.add(object.metadata.name);
        // Mirrors waiting for this namespace can be written now.
        for (const [key, objects] of this.desired) if (objects.some((o) => o.metadata.namespace === object.metadata.name)) this.mark(key);
      }
      return;
    }
    const key = objectKey(object);
    if (event.type === 'DELETED') this.actual.delete(key);
    else this.actual.set(key, object);
    // Changed by someone else (or deleted): put it back as it should be.
    const remoteKey = remoteKeyOf(object) ?? this.claims.get(key);
    const wanted = remoteKey === undefined ? undefined : this.desired.get(remoteKey)?.find((o) => objectKey(o) === key);
    if (remoteKey !== undefined && (event.type === 'DELETED' ? wanted !== undefined : wanted === undefined || contentOf(wanted) !== contentOf(object))) this.mark(remoteKey);
  }

  private async flush(remoteKeys: string[]): Promise<void> {
    const { store, log } = this.options;
    const writes: Resource[] = [];
    const deletes: Resource[] = [];
    const wantedKeys = new Set<string>();
    for (const remoteKey of remoteKeys) {
      for (const object of this.desired.get(remoteKey) ?? []) {
        if (!this.namespaces.has(object.metadata.namespace!)) continue;
        const key = objectKey(object);
        wantedKeys.add(key);
        const current = this.actual.get(key);
        if (current && contentOf(current) === contentOf(object)) continue;
        if (!current) {
          // Not this link's (yet): make sure the name is not someone else's.
          const existing = await store.get(refOf(object));
          if (existing && remoteKeyOf(existing) === undefined) {
            if (!this.conflicts.has(key)) log.warn({ object: key }, 'link: a mirror name is taken by an object that is not a mirror; not overwriting it');
            this.conflicts.set(key, remoteKey);
            continue;
          }
        }
        this.conflicts.delete(key);
        writes.push(object);
      }
    }
    const remoteSet = new Set(remoteKeys);
    for (const [key, object] of this.actual) {
      const remoteKey = remoteKeyOf(object) ?? '';
      if (!wantedKeys.has(key) && remoteSet.has(remoteKey) && (this.authoritative || this.heard.has(remoteKey))) deletes.push(object);
    }
    for (const [key, remoteKey] of this.conflicts) if (remoteSet.has(remoteKey) && !wantedKeys.has(key)) this.conflicts.delete(key);
    // Services before their slices, so a slice never names a service that is not there yet.
    writes.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'Service' ? -1 : 1));
    for (let i = 0; i < writes.length; i += BATCH) {
      for (const result of await store.apply(writes.slice(i, i + BATCH))) this.actual.set(objectKey(result.object), result.object);
    }
    for (let i = 0; i < deletes.length; i += BATCH) {
      const chunk = deletes.slice(i, i + BATCH);
      await store.delete(chunk.map(refOf));
      for (const object of chunk) this.actual.delete(objectKey(object));
    }
  }
}
