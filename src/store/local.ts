// The local store: a cluster's resources in memory, persisted in a directory (see journal.ts), with
// Kubernetes semantics for server-set metadata, optimistic concurrency and watches.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { describeRef, refOf, type ObjectMeta, type Resource, type ResourceRef } from '../api/types.js';
import { Journal, StoreCorruptError, opVersion, type LoggedOp, type LoggedTransaction, type Recovered } from './journal.js';
import { lockDirectory, type DirectoryLock } from './lock.js';
import {
  ConflictError,
  ExpiredError,
  NotFoundError,
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
import { History, Subscription, WatchFilter, type Change } from './watch.js';

export { StoreCorruptError } from './journal.js';
export { StoreLockedError } from './lock.js';
export { WATCH_BACKLOG_LIMIT, WATCH_HISTORY_LIMIT } from './watch.js';

export interface LocalStoreOptions {
  /** Where warnings go (a torn log end ignored, a stale lock taken over). Default: process.emitWarning. */
  warn?: (message: string) => void;
  /** Compact the log into the snapshot once it is this big and bigger than the snapshot. */
  compactLogBytes?: number;
}

const DEFAULT_COMPACT_LOG_BYTES = 4 * 1024 * 1024;

const METADATA_FIELDS = new Set(['name', 'namespace', 'labels', 'annotations', 'ownerReferences', 'uid', 'resourceVersion', 'generation', 'creationTimestamp']);

/** A write waiting for the commit loop. */
interface PendingWrite {
  run(tx: Transaction): unknown;
  resolve(result: unknown): void;
  reject(err: unknown): void;
}

export class LocalStore implements Store {
  private readonly index = new ObjectIndex();
  private readonly history: History;
  /** Watchers by the kind they watch; '' for all kinds. */
  private readonly subscriptions = new Map<string, Set<Subscription>>();
  private readonly queue: PendingWrite[] = [];
  private committing = false;
  private idle: Promise<void> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Set when the log could not be written: the store then refuses every write. */
  private failure: Error | undefined;

  private constructor(
    /** The directory, or "memory"; messages name the store by it. */
    readonly name: string,
    private resourceVersion: number,
    private readonly warn: (message: string) => void,
    private readonly journal?: Journal,
    private readonly lock?: DirectoryLock,
  ) {
    this.history = new History(resourceVersion);
  }

  /** A store that lives only in memory (tests, tools). */
  static memory(options: LocalStoreOptions = {}): LocalStore {
    return new LocalStore('memory', 0, options.warn ?? defaultWarn);
  }

  /**
   * Opens the store in `dir` (created if missing), taking its lock: StoreLockedError while another
   * live process has it open; StoreCorruptError when its files cannot be trusted.
   */
  static async open(dir: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const warn = options.warn ?? defaultWarn;
    await mkdir(dir, { recursive: true });
    const lock = await lockDirectory(dir, warn);
    let journal: Journal | undefined;
    try {
      const opened = await Journal.open(dir, { warn, compactLogBytes: options.compactLogBytes ?? DEFAULT_COMPACT_LOG_BYTES });
      journal = opened.journal;
      const store = new LocalStore(dir, opened.recovered.snapshotVersion, warn, journal, lock);
      store.recover(opened.recovered);
      return store;
    } catch (err) {
      await journal?.close();
      await lock.release();
      throw err;
    }
  }

  get(ref: ResourceRef): Promise<Resource | undefined> {
    return settled(() => {
      const object = this.index.get(checkRef(ref, 'get'));
      return object && copy(object);
    });
  }

  list(kind: string, opts: ListOptions = {}): Promise<ListResult> {
    return settled(() => {
      if (typeof kind !== 'string' || kind === '') throw new TypeError('list: kind must be a non-empty string');
      const filter = new WatchFilter({ ...opts, kind });
      const items = this.index.list(kind, checkNamespace(opts.namespace, 'list')).filter((o) => filter.selects(o)).map(copy);
      return { items, resourceVersion: String(this.resourceVersion) };
    });
  }

  async apply(objects: Resource[]): Promise<ApplyResult[]> {
    const inputs = objects.map((o, i) => checkObject(o, `apply: object ${i + 1}`));
    if (inputs.length === 0) return [];
    return this.write((tx) => inputs.map((input) => applyOne(tx, input)));
  }

  async updateStatus(ref: ResourceRef, status: unknown): Promise<Resource> {
    const target = checkRef(ref, 'updateStatus');
    const newStatus = status === undefined ? undefined : toJson(status, `updateStatus ${describeRef(target)}: status`);
    return this.write((tx) => {
      const current = tx.get(target);
      if (!current) throw new NotFoundError(`${describeRef(target)} does not exist`);
      if (isDeepStrictEqual(current.status, newStatus)) return copy(current);
      const { status: _old, ...rest } = current;
      return copy(tx.put(newStatus === undefined ? rest : { ...rest, status: newStatus }, current));
    });
  }

  async delete(refs: DeleteRef[]): Promise<DeleteResult[]> {
    const targets = refs.map((r, i) => {
      const where = `delete: ref ${i + 1}`;
      const ref = checkRef(r, where);
      if (r.resourceVersion !== undefined) checkVersion(r.resourceVersion, `${where}: resourceVersion`);
      return { ref, precondition: r.resourceVersion };
    });
    if (targets.length === 0) return [];
    return this.write((tx) =>
      targets.map(({ ref, precondition }) => {
        const current = tx.get(ref);
        if (precondition !== undefined) checkPrecondition(ref, current, precondition);
        if (current) tx.remove(current);
        return { ref, deleted: current !== undefined };
      }),
    );
  }

  watch(opts: WatchOptions, onEvent: (e: WatchEvent) => void | Promise<void>, onError?: (err: Error) => void): Watch {
    const from = opts.resourceVersion === undefined ? undefined : checkVersion(opts.resourceVersion, 'watch: resourceVersion');
    checkNamespace(opts.namespace, 'watch');
    const subscription = new Subscription(new WatchFilter(opts), onEvent, onError, {
      copy,
      unsubscribe: (s) => this.subscriptions.get(s.filter.kind ?? '')?.delete(s),
      warn: this.warn,
    });
    const refusal = this.closed
      ? new Error(`store ${this.name} is closed`)
      : from !== undefined && from < this.history.floor
        ? new ExpiredError(`resourceVersion ${from} is too old: store ${this.name} keeps the changes after ${this.history.floor}; list again`)
        : from !== undefined && from > this.resourceVersion
          ? new ExpiredError(`resourceVersion ${from} is newer than store ${this.name} (at ${this.resourceVersion}); list again`)
          : undefined;
    if (refusal) {
      // Reported like any end of a watch: after the caller has its handle.
      queueMicrotask(() => subscription.fail(refusal));
      return subscription;
    }
    if (from !== undefined) for (const change of this.history.between(from, this.resourceVersion)) subscription.offer(change);
    const key = opts.kind ?? '';
    let set = this.subscriptions.get(key);
    if (!set) this.subscriptions.set(key, (set = new Set()));
    set.add(subscription);
    return subscription;
  }

  /** Finishes the writes already made, ends every watch, and releases the directory. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    await this.idle;
    const closedError = new Error(`store ${this.name} is closed`);
    for (const set of this.subscriptions.values()) for (const s of [...set]) s.fail(closedError, true);
    await this.journal?.close();
    await this.lock?.release();
  }

  /**
   * Queues a write. Writes are committed in order by one loop; the writes that queue up while the
   * log is being synced are committed together with one sync (group commit), each still its own
   * transaction, all or nothing.
   */
  private write<T>(run: (tx: Transaction) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`store ${this.name} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: (result) => resolve(result as T), reject });
      if (!this.committing) {
        this.committing = true;
        this.idle = this.commitLoop();
      }
    });
  }

  private async commitLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.commitBatch(this.queue.splice(0));
    } finally {
      this.committing = false;
    }
  }

  private async commitBatch(batch: PendingWrite[]): Promise<void> {
    // Each write sees the ones before it in the batch; one that throws leaves no trace.
    const staged = new Transaction((ref) => this.index.get(ref), this.resourceVersion);
    const done: { write: PendingWrite; tx: Transaction; result: unknown }[] = [];
    for (const write of batch) {
      if (this.failure) {
        write.reject(this.failure);
        continue;
      }
      const tx = new Transaction((ref) => staged.get(ref), staged.resourceVersion);
      try {
        const result = write.run(tx);
        staged.absorb(tx);
        done.push({ write, tx, result });
      } catch (err) {
        write.reject(err);
      }
    }
    const logged = done.filter((d) => d.tx.changes.length > 0).map((d) => d.tx.changes);
    if (this.journal && logged.length > 0) {
      try {
        await this.journal.append(logged.map(toLogged));
      } catch (err) {
        // After a failed write or sync the log's state on disk is unknown (a later sync may even
        // claim success), so nothing more is written; reopening recovers what was acknowledged.
        this.failure = new Error(`store ${this.name} could not write its log and accepts no more writes: ${(err as Error).message}`);
        for (const d of done) d.write.reject(this.failure);
        return;
      }
    }
    for (const change of staged.changes) this.commit(change);
    for (const d of done) d.write.resolve(d.result);
    if (this.journal?.needsCompaction) {
      try {
        await this.journal.compact(this.resourceVersion, this.index.all());
      } catch (err) {
        // The log still holds everything; compaction is tried again later.
        this.warn(`store ${this.name}: compaction failed: ${(err as Error).message}`);
      }
    }
  }

  /** Makes a durable change visible: the index, the history, the watchers. */
  private commit(change: Change): void {
    if (change.type === 'DELETED') this.index.delete(refOf(change.object));
    else this.index.set(change.object);
    this.resourceVersion = change.resourceVersion;
    this.history.add(change);
    for (const key of [change.object.kind, '']) {
      const set = this.subscriptions.get(key);
      if (set) for (const s of set) s.offer(change);
    }
  }

  private recover(recovered: Recovered): void {
    for (const object of recovered.objects) this.index.set(object);
    for (const tx of recovered.transactions) {
      for (const op of tx.ops) {
        const resourceVersion = opVersion(op);
        if ('put' in op) {
          const previous = this.index.get(refOf(op.put));
          this.commit({ type: previous ? 'MODIFIED' : 'ADDED', resourceVersion, object: op.put, previous });
        } else {
          const previous = this.index.get(op.delete);
          if (!previous) throw new StoreCorruptError(`store ${this.name}: the log deletes ${describeRef(op.delete)}, which it does not hold`);
          this.commit({ type: 'DELETED', resourceVersion, object: withVersion(previous, resourceVersion), previous });
        }
      }
    }
  }
}

/** The writes of one transaction, seen over what it reads (the committed state or a batch). */
class Transaction {
  readonly changes: Change[] = [];
  private readonly written = new Map<string, Resource | null>();

  constructor(
    private readonly read: (ref: ResourceRef) => Resource | undefined,
    public resourceVersion: number,
  ) {}

  get(ref: ResourceRef): Resource | undefined {
    const written = this.written.get(keyOf(ref));
    return written === undefined ? this.read(ref) : (written ?? undefined);
  }

  /** Writes `object` (replacing `previous`) at the next resourceVersion and returns it as stored. */
  put(object: Resource, previous: Resource | undefined): Resource {
    const stored = withVersion(object, ++this.resourceVersion);
    this.record({ type: previous ? 'MODIFIED' : 'ADDED', resourceVersion: this.resourceVersion, object: stored, previous }, stored);
    return stored;
  }

  remove(previous: Resource): void {
    const version = ++this.resourceVersion;
    this.record({ type: 'DELETED', resourceVersion: version, object: withVersion(previous, version), previous }, null);
  }

  absorb(tx: Transaction): void {
    for (const change of tx.changes) this.record(change, change.type === 'DELETED' ? null : change.object);
    this.resourceVersion = tx.resourceVersion;
  }

  private record(change: Change, result: Resource | null): void {
    this.changes.push(change);
    this.written.set(keyOf(refOf(change.object)), result);
  }
}

/** kind → namespace ('' for cluster-scoped) → name → object. */
class ObjectIndex {
  private readonly kinds = new Map<string, Map<string, Map<string, Resource>>>();

  get(ref: ResourceRef): Resource | undefined {
    return this.kinds.get(ref.kind)?.get(ref.namespace ?? '')?.get(ref.name);
  }

  set(object: Resource): void {
    let namespaces = this.kinds.get(object.kind);
    if (!namespaces) this.kinds.set(object.kind, (namespaces = new Map<string, Map<string, Resource>>()));
    const ns = object.metadata.namespace ?? '';
    let names = namespaces.get(ns);
    if (!names) namespaces.set(ns, (names = new Map<string, Resource>()));
    names.set(object.metadata.name, object);
  }

  delete(ref: ResourceRef): void {
    const namespaces = this.kinds.get(ref.kind);
    const names = namespaces?.get(ref.namespace ?? '');
    if (!names?.delete(ref.name)) return;
    if (names.size === 0) namespaces!.delete(ref.namespace ?? '');
    if (namespaces!.size === 0) this.kinds.delete(ref.kind);
  }

  /** Objects of `kind` (in `namespace`, or all), sorted by namespace, then name. */
  list(kind: string, namespace: string | undefined): Resource[] {
    const namespaces = this.kinds.get(kind);
    if (!namespaces) return [];
    const keys = namespace === undefined ? [...namespaces.keys()].sort(compare) : [namespace];
    return keys.flatMap((ns) => {
      const names = namespaces.get(ns);
      return names ? [...names.keys()].sort(compare).map((name) => names.get(name)!) : [];
    });
  }

  *all(): Iterable<Resource> {
    for (const namespaces of this.kinds.values()) for (const names of namespaces.values()) yield* names.values();
  }
}

/** Creates or updates one object inside a transaction, as a Kubernetes apply does. */
function applyOne(tx: Transaction, input: Resource): ApplyResult {
  const ref = refOf(input);
  const current = tx.get(ref);
  const { apiVersion, kind, metadata, status: _ignored, ...body } = input;
  if (metadata.resourceVersion !== undefined) checkPrecondition(ref, current, metadata.resourceVersion);
  const meta: ObjectMeta = { name: metadata.name };
  if (metadata.namespace !== undefined) meta.namespace = metadata.namespace;
  if (metadata.labels && Object.keys(metadata.labels).length > 0) meta.labels = metadata.labels;
  if (metadata.annotations && Object.keys(metadata.annotations).length > 0) meta.annotations = metadata.annotations;
  // Owner references are kept unless given (an empty list removes them).
  const owners = metadata.ownerReferences ?? current?.metadata.ownerReferences;
  if (owners && owners.length > 0) meta.ownerReferences = owners;

  if (!current) {
    const created = tx.put({ apiVersion, kind, metadata: { ...meta, uid: randomUUID(), generation: 1, creationTimestamp: now() }, ...body }, undefined);
    return { outcome: 'created', object: copy(created) };
  }
  const { apiVersion: _a, kind: _k, metadata: currentMeta, status, ...currentBody } = current;
  const sameBody = isDeepStrictEqual(body, currentBody);
  const sameMeta = isDeepStrictEqual(ownedMetadata(meta), ownedMetadata(currentMeta));
  if (sameBody && sameMeta && apiVersion === current.apiVersion) return { outcome: 'unchanged', object: copy(current) };
  const updated: Resource = {
    apiVersion,
    kind,
    metadata: {
      ...meta,
      uid: currentMeta.uid,
      // As in Kubernetes, the generation counts changes of the desired state, not of metadata or status.
      generation: (currentMeta.generation ?? 1) + (sameBody ? 0 : 1),
      creationTimestamp: currentMeta.creationTimestamp,
    },
    ...body,
  };
  if (status !== undefined) updated.status = status;
  return { outcome: 'configured', object: copy(tx.put(updated, current)) };
}

/** The metadata that apply sets (the rest is identity or set by the store). */
function ownedMetadata(m: ObjectMeta): Partial<ObjectMeta> {
  return { labels: m.labels, annotations: m.annotations, ownerReferences: m.ownerReferences };
}

function checkPrecondition(ref: ResourceRef, current: Resource | undefined, expected: string): void {
  if (!current) throw new ConflictError(`${describeRef(ref)} does not exist, but resourceVersion ${expected} was required`);
  if (current.metadata.resourceVersion !== expected) {
    throw new ConflictError(
      `${describeRef(ref)} has been modified: resourceVersion ${expected} was required, the stored one is ${current.metadata.resourceVersion}; read it again and retry`,
    );
  }
}

function toLogged(changes: Change[]): LoggedTransaction {
  return {
    ops: changes.map((c): LoggedOp => (c.type === 'DELETED' ? { delete: refOf(c.object), resourceVersion: String(c.resourceVersion) } : { put: c.object })),
  };
}

function withVersion(object: Resource, version: number): Resource {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(version) } };
}

/** Validates an object given to the store and returns a JSON copy the caller cannot change. */
function checkObject(value: unknown, where: string): Resource {
  if (!isRecord(value)) throw new TypeError(`${where}: not an object`);
  const { apiVersion, kind, metadata } = value;
  if (typeof apiVersion !== 'string' || apiVersion === '') throw new TypeError(`${where}: apiVersion must be a non-empty string`);
  if (typeof kind !== 'string' || kind === '') throw new TypeError(`${where}: kind must be a non-empty string`);
  if (!isRecord(metadata)) throw new TypeError(`${where} (${kind}): metadata must be an object`);
  const ref = checkRef({ kind, namespace: metadata.namespace as string | undefined, name: metadata.name as string }, `${where} (${kind})`);
  const at = `${where} (${describeRef(ref)})`;
  for (const field of Object.keys(metadata)) {
    if (!METADATA_FIELDS.has(field)) throw new TypeError(`${at}: metadata.${field} is not a field the store keeps`);
  }
  for (const field of ['labels', 'annotations'] as const) {
    const map = metadata[field];
    if (map === undefined) continue;
    if (!isRecord(map)) throw new TypeError(`${at}: metadata.${field} must be a map of strings`);
    for (const [key, v] of Object.entries(map)) {
      if (typeof v !== 'string') throw new TypeError(`${at}: metadata.${field}.${key} must be a string`);
    }
  }
  if (metadata.ownerReferences !== undefined && !Array.isArray(metadata.ownerReferences)) {
    throw new TypeError(`${at}: metadata.ownerReferences must be a list`);
  }
  if (metadata.resourceVersion !== undefined) checkVersion(metadata.resourceVersion, `${at}: metadata.resourceVersion`);
  return toJson(value, at) as Resource;
}

function checkRef(ref: unknown, where: string): ResourceRef {
  if (!isRecord(ref)) throw new TypeError(`${where}: not a ref`);
  const { kind, namespace, name } = ref;
  if (typeof kind !== 'string' || kind === '') throw new TypeError(`${where}: kind must be a non-empty string`);
  if (typeof name !== 'string' || name === '') throw new TypeError(`${where}: name must be a non-empty string`);
  return checkNamespace(namespace, where) === undefined ? { kind, name } : { kind, namespace: namespace as string, name };
}

function checkNamespace(namespace: unknown, where: string): string | undefined {
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) {
    throw new TypeError(`${where}: namespace, when given, must be a non-empty string`);
  }
  return namespace;
}

function checkVersion(value: unknown, where: string): number {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw new TypeError(`${where} must be a decimal string, not ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * A plain-JSON copy. What the store holds is exactly what it persists, so a restarted store is
 * equal to the one before (no Dates, undefined fields or shared references sneak in).
 */
function toJson(value: unknown, where: string): unknown {
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch (err) {
    throw new TypeError(`${where}: cannot be stored as JSON: ${(err as Error).message}`);
  }
}

/** A synchronous read as the promise the Store interface returns: bad arguments reject, not throw. */
function settled<T>(read: () => T): Promise<T> {
  return new Promise((resolve) => resolve(read()));
}

/** A deep copy of a stored (plain JSON) object; much faster than a JSON round trip. */
function copy(object: Resource): Resource {
  return copyJson(object) as Resource;
}

function copyJson(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    // Assigning "__proto__" would set the prototype instead of a field.
    if (key === '__proto__') Object.defineProperty(out, key, { value: copyJson(v), enumerable: true, writable: true, configurable: true });
    else out[key] = copyJson(v);
  }
  return out;
}

function keyOf(ref: ResourceRef): string {
  return JSON.stringify([ref.kind, ref.namespace ?? '', ref.name]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 3339 at second precision, as Kubernetes writes creationTimestamp. */
function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function defaultWarn(message: string): void {
  process.emitWarning(message, { code: 'STRAIT_STORE' });
}
