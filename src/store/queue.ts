// A keyed work queue, as client-go's workqueue is to a Kubernetes controller: a change marks a key,
// a key marked many times before it is worked on is worked on once, one batch is worked on at a
// time (so a key never has two workers), and a batch that fails is tried again after a back-off.
// Keys marked in the same turn go into one batch: a controller writes them in a few transactions.

export interface WorkQueueOptions<K> {
  /**
   * Works on the keys. The keys it returns, or every key when it throws, are tried again after the
   * back-off.
   */
  process(keys: K[]): Promise<void | K[]>;
  /** Called when `process` throws, before the keys wait for their retry. */
  onError?(err: Error, keys: K[]): void;
  /** Back-off after consecutive failures, doubling from `initialMs` up to `maxMs`. */
  retry?: { initialMs: number; maxMs: number };
  /** Hold work until `start()` (a controller that must fill its caches first). */
  paused?: boolean;
}

const DEFAULT_RETRY = { initialMs: 1000, maxMs: 30_000 };

export class WorkQueue<K> {
  private readonly dirty = new Set<K>();
  /** Keys whose batch failed, waiting for the retry timer. */
  private readonly failed = new Set<K>();
  private running: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private paused: boolean;
  private stopped = false;

  constructor(private readonly options: WorkQueueOptions<K>) {
    this.paused = options.paused ?? false;
  }

  add(key: K): void {
    this.dirty.add(key);
    this.schedule();
  }

  addAll(keys: Iterable<K>): void {
    for (const key of keys) this.dirty.add(key);
    this.schedule();
  }

  /** Starts a paused queue. */
  start(): void {
    this.paused = false;
    this.schedule();
  }

  /** Stops taking work and waits for the batch in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.running;
  }

  /** Resolves once every key marked so far is worked on (or failed and waits for its retry). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private schedule(): void {
    if (this.paused || this.running || this.stopped || this.dirty.size === 0) return;
    this.running = (async () => {
      // Let keys marked in the same turn join this batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.dirty.size > 0 && !this.stopped) {
        const keys = [...this.dirty];
        this.dirty.clear();
        await this.work(keys);
      }
    })().finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private async work(keys: K[]): Promise<void> {
    let failed: K[];
    try {
      failed = (await this.options.process(keys)) ?? [];
    } catch (err) {
      this.options.onError?.(err as Error, keys);
      failed = keys;
    }
    if (failed.length === 0) {
      this.failures = 0;
      return;
    }
    for (const key of failed) this.failed.add(key);
    const { initialMs, maxMs } = this.options.retry ?? DEFAULT_RETRY;
    const delay = Math.min(maxMs, initialMs * 2 ** this.failures++);
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      for (const key of this.failed) this.dirty.add(key);
      this.failed.clear();
      this.schedule();
    }, delay);
  }
}
