// A copy of one kind's objects (those a namespace and label selector pick), kept current by a store
// watch, as a Kubernetes informer keeps one: a list, then a watch from the list's resourceVersion.
// When the watch ends (its history expired — 410 on Kubernetes — or the store failed), the kind is
// listed again with back-off and what differs is passed on as changes, so a listener never misses
// one and never sees one twice.
import type { Resource } from '../api/types.js';
import { ExpiredError, type Store, type Watch } from './store.js';

/** `previous` is absent for a new object, `current` for a deleted one. */
export type InformerListener<T extends Resource> = (previous: T | undefined, current: T | undefined) => void;

export interface InformerOptions<T extends Resource> {
  store: Store;
  kind: string;
  namespace?: string;
  labelSelector?: string;
  /** Called for each change, after the copy holds it. */
  onChange?: InformerListener<T>;
  /** Called after a relist has passed on its differences. */
  onResync?: () => void;
  /** A watch ended or a relist failed; said once per outage, not once per retry. */
  warn?: (message: string, err: Error) => void;
  backoff?: { initialMs: number; maxMs: number };
}

const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 5_000 };

export class Informer<T extends Resource = Resource> {
  /** namespace ('' for cluster-scoped) → name → object. */
  private readonly objects = new Map<string, Map<string, T>>();
  private watch: Watch | undefined;
  private relistTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private version = '';
  private count = 0;

  constructor(private readonly options: InformerOptions<T>) {}

  get kind(): string {
    return this.options.kind;
  }

  /**
   * Lists the objects (passing each on as new) and starts watching. Rejects if that first list
   * fails, and keeps trying in the background until it succeeds or `stop()`.
   */
  async start(): Promise<void> {
    try {
      await this.list();
    } catch (err) {
      this.failures = 1;
      this.relist(err as Error);
      throw err;
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.relistTimer);
    this.watch?.stop();
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(namespace)?.get(name);
  }

  *values(): IterableIterator<T> {
    for (const names of this.objects.values()) yield* names.values();
  }

  /** The objects of one namespace ('' for cluster-scoped ones). */
  inNamespace(namespace: string): Iterable<T> {
    return this.objects.get(namespace)?.values() ?? [];
  }

  get size(): number {
    return this.count;
  }

  /** The store's resourceVersion of the latest list or change the copy holds. */
  get resourceVersion(): string {
    return this.version;
  }

  private async list(): Promise<void> {
    this.watch?.stop();
    const { store, kind, namespace, labelSelector } = this.options;
    const { items, resourceVersion } = await store.list(kind, { namespace, labelSelector });
    if (this.stopped) return;
    const listed = new Map<string, Map<string, T>>();
    for (const object of items as T[]) {
      const ns = object.metadata.namespace ?? '';
      let names = listed.get(ns);
      if (!names) listed.set(ns, (names = new Map<string, T>()));
      names.set(object.metadata.name, object);
    }
    for (const before of [...this.values()]) {
      if (!listed.get(before.metadata.namespace ?? '')?.has(before.metadata.name)) this.put(before, undefined, before);
    }
    for (const names of listed.values()) {
      for (const object of names.values()) {
        const before = this.get(object.metadata.namespace ?? '', object.metadata.name);
        if (before?.metadata.resourceVersion !== object.metadata.resourceVersion) this.put(before, object, object);
      }
    }
    this.version = resourceVersion;
    this.watch = store.watch(
      { kind, namespace, labelSelector, resourceVersion },
      (event) => {
        const object = event.object as T;
        const before = this.get(object.metadata.namespace ?? '', object.metadata.name);
        this.put(before, event.type === 'DELETED' ? undefined : object, object);
        if (object.metadata.resourceVersion) this.version = object.metadata.resourceVersion;
      },
      (err) => this.relist(err),
    );
  }

  private put(previous: T | undefined, current: T | undefined, object: T): void {
    const namespace = object.metadata.namespace ?? '';
    let names = this.objects.get(namespace);
    if (current) {
      if (!names) this.objects.set(namespace, (names = new Map<string, T>()));
      names.set(object.metadata.name, current);
      if (!previous) this.count++;
    } else if (names?.delete(object.metadata.name)) {
      this.count--;
      if (names.size === 0) this.objects.delete(namespace);
    }
    this.options.onChange?.(previous, current);
  }

  /** Lists again after a pause, doubling the pause while listing fails. */
  private relist(err: Error): void {
    if (this.stopped || this.relistTimer) return;
    // An expired history is routine (the store compacted it); anything else is worth saying.
    if (this.failures === 0 && !(err instanceof ExpiredError)) this.options.warn?.(`the ${this.options.kind} watch ended (${err.message}); listing again`, err);
    const { initialMs, maxMs } = this.options.backoff ?? DEFAULT_BACKOFF;
    const delay = err instanceof ExpiredError && this.failures === 0 ? 0 : Math.min(maxMs, initialMs * 2 ** this.failures);
    this.relistTimer = setTimeout(() => {
      this.list().then(
        () => {
          this.relistTimer = undefined;
          this.failures = 0;
          if (!this.stopped) this.options.onResync?.();
        },
        (listErr: unknown) => {
          this.relistTimer = undefined;
          this.failures++;
          if (this.failures === 1) this.options.warn?.(`cannot list ${this.options.kind} (${(listErr as Error).message}); trying again`, listErr as Error);
          this.relist(listErr as Error);
        },
      );
    }, delay);
  }
}
