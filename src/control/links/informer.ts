// A copy of one kind's objects (those a label selector picks), kept current by a store watch, as a
// Kubernetes informer keeps one: a list, then every change. When the watch ends, the kind is listed
// again and what differs is passed on as changes, so a listener never misses one.
import type { Logger } from 'pino';
import type { Resource } from '../../api/types.js';
import type { Store, Watch } from '../../store/store.js';

const RELIST_MS = { initial: 100, max: 5_000 };

/** `previous` is absent for a new object, `current` for a deleted one. */
export type InformerListener<T extends Resource> = (previous: T | undefined, current: T | undefined) => void;

export class Informer<T extends Resource> {
  private readonly objects = new Map<string, T>();
  private watch: Watch | undefined;
  private relistTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly kind: string,
    private readonly onChange: InformerListener<T>,
    private readonly log: Logger,
    private readonly labelSelector?: string,
  ) {}

  /** Lists the objects (passing each on as new) and starts watching. */
  async start(): Promise<void> {
    await this.list();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.relistTimer);
    this.watch?.stop();
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  values(): IterableIterator<T> {
    return this.objects.values();
  }

  private async list(): Promise<void> {
    this.watch?.stop();
    const { items, resourceVersion } = await this.store.list(this.kind, { labelSelector: this.labelSelector });
    if (this.stopped) return;
    const listed = new Map(items.map((o) => [keyOf(o), o as T]));
    for (const [key, before] of [...this.objects]) if (!listed.has(key)) this.put(key, before, undefined);
    for (const [key, object] of listed) {
      const before = this.objects.get(key);
      if (before?.metadata.resourceVersion !== object.metadata.resourceVersion) this.put(key, before, object);
    }
    this.watch = this.store.watch(
      { kind: this.kind, labelSelector: this.labelSelector, resourceVersion },
      (event) => {
        const key = keyOf(event.object);
        this.put(key, this.objects.get(key), event.type === 'DELETED' ? undefined : (event.object as T));
      },
      (err) => this.watchEnded(err),
    );
  }

  private put(key: string, previous: T | undefined, current: T | undefined): void {
    if (current) this.objects.set(key, current);
    else this.objects.delete(key);
    this.onChange(previous, current);
  }

  private watchEnded(err: Error): void {
    if (this.stopped || this.relistTimer) return;
    if (this.failures === 0) this.log.warn({ kind: this.kind, err: err.message }, 'clusterset: a store watch ended; listing again');
    const delay = Math.min(RELIST_MS.max, RELIST_MS.initial * 2 ** this.failures);
    this.relistTimer = setTimeout(() => {
      this.list().then(
        () => {
          this.relistTimer = undefined;
          this.failures = 0;
        },
        (listErr: unknown) => {
          this.relistTimer = undefined;
          this.failures++;
          this.watchEnded(listErr as Error);
        },
      );
    }, delay);
  }
}

const keyOf = (o: Resource) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
