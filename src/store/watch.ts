// Watches of the local store: the bounded history they resume from and the per-watcher delivery.
import { matchesRequirements, parseSelector, selectorRequirements } from '../api/labels.js';
import type { LabelSelectorRequirement, Resource } from '../api/types.js';
import { ExpiredError, type Watch, type WatchEvent, type WatchEventType, type WatchOptions } from './store.js';

/** How many changes the store remembers for watches that resume from a resourceVersion. */
export const WATCH_HISTORY_LIMIT = 10_000;

/**
 * How many undelivered events a watcher may have before it is ended with ExpiredError (it then
 * lists again, as a Kubernetes client does): memory stays bounded under a subscriber that never
 * finishes. Well above one transaction of 10 000 objects.
 */
export const WATCH_BACKLOG_LIMIT = 100_000;

/** One committed change; `object` carries the change's resourceVersion (for DELETED too). */
export interface Change {
  type: WatchEventType;
  resourceVersion: number;
  object: Resource;
  /** The object before the change, for ADDED undefined. */
  previous: Resource | undefined;
}

/** The last WATCH_HISTORY_LIMIT changes; every change has its own resourceVersion, so they are contiguous. */
export class History {
  private readonly ring = new Array<Change>(WATCH_HISTORY_LIMIT);

  constructor(private floorVersion: number) {}

  /** Every change after this version is held. */
  get floor(): number {
    return this.floorVersion;
  }

  add(change: Change): void {
    this.ring[change.resourceVersion % WATCH_HISTORY_LIMIT] = change;
    this.floorVersion = Math.max(this.floorVersion, change.resourceVersion - WATCH_HISTORY_LIMIT);
  }

  /** The changes after `from` up to `to`; `from` must not be below `floor`. */
  *between(from: number, to: number): Iterable<Change> {
    for (let version = from + 1; version <= to; version++) yield this.ring[version % WATCH_HISTORY_LIMIT]!;
  }
}

/** What a list or a watch selects: a kind, a namespace, a label selector. */
export class WatchFilter {
  readonly kind: string | undefined;
  private readonly namespace: string | undefined;
  private readonly requirements: LabelSelectorRequirement[];

  constructor(opts: WatchOptions) {
    this.kind = opts.kind;
    this.namespace = opts.namespace;
    const selector = opts.labelSelector ?? '';
    this.requirements = typeof selector === 'string' ? parseSelector(selector) : selectorRequirements(selector);
  }

  selects(object: Resource): boolean {
    return (
      (this.kind === undefined || object.kind === this.kind) &&
      (this.namespace === undefined || object.metadata.namespace === this.namespace) &&
      matchesRequirements(object.metadata.labels, this.requirements)
    );
  }

  /** How this watcher sees a change; undefined when it does not see it at all. */
  view(change: Change): WatchEventType | undefined {
    const selected = this.selects(change.object);
    if (change.type !== 'MODIFIED') return selected ? change.type : undefined;
    const wasSelected = this.selects(change.previous!);
    if (selected) return wasSelected ? 'MODIFIED' : 'ADDED';
    return wasSelected ? 'DELETED' : undefined;
  }
}

/**
 * One watcher. Events are queued and delivered asynchronously, one at a time, so a watcher that
 * throws or takes its time never holds up the store or the other watchers.
 */
export class Subscription implements Watch {
  // Undelivered events are queue[head..]; delivered ones are cut off now and then, not shifted one by one.
  private queue: { type: WatchEventType; object: Resource }[] = [];
  private head = 0;
  private draining = false;
  private stopped = false;

  constructor(
    readonly filter: WatchFilter,
    private readonly onEvent: (e: WatchEvent) => void | Promise<void>,
    private readonly onError: ((err: Error) => void) | undefined,
    private readonly hooks: { copy: (o: Resource) => Resource; unsubscribe: (s: Subscription) => void; warn: (message: string) => void },
  ) {}

  offer(change: Change): void {
    const type = this.filter.view(change);
    if (type === undefined || this.stopped) return;
    this.queue.push({ type, object: change.object });
    if (this.queue.length - this.head > WATCH_BACKLOG_LIMIT) {
      this.fail(new ExpiredError(`watch fell more than ${WATCH_BACKLOG_LIMIT} events behind; list again`));
    } else if (!this.draining) {
      this.draining = true;
      queueMicrotask(() => void this.drain());
    }
  }

  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.head = 0;
    this.hooks.unsubscribe(this);
  }

  /**
   * Ends the watch abnormally: `onError`, and nothing more is delivered. Without `onError` the
   * error is a warning, unless it is only the store closing.
   */
  fail(err: Error, closing = false): void {
    if (this.stopped) return;
    this.stop();
    try {
      if (this.onError) this.onError(err);
      else if (!closing) this.hooks.warn(`a store watch ended: ${err.message}`);
    } catch (thrown) {
      this.hooks.warn(`a store watch's error handler threw: ${(thrown as Error).message}`);
    }
  }

  private async drain(): Promise<void> {
    while (this.head < this.queue.length && !this.stopped) {
      const { type, object } = this.queue[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      try {
        const pending = this.onEvent({ type, object: this.hooks.copy(object) });
        if (pending) await pending;
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.queue = [];
    this.head = 0;
    this.draining = false;
  }
}
