// Load balancing over one backend's ready endpoints, as Linkerd does it: power of two choices over
// peak-EWMA latency by default (two endpoints drawn at random, the cheaper one wins, where cost is
// the decayed round-trip-time estimate times the requests in flight plus one), round-robin when the
// service asks for it. An endpoint whose connect failed sits out a short, growing back-off.
import type { LoadBalancer } from './destinations.js';

/** A new endpoint's RTT estimate before any answer (Linkerd's default). */
export const DEFAULT_RTT_MS = 30;
/** How fast the estimate forgets: an observation's weight falls to 1/e after this long. */
export const EWMA_DECAY_MS = 10_000;
export const BACKOFF_INITIAL_MS = 500;
export const BACKOFF_MAX_MS = 10_000;

/**
 * A peak-sensitive EWMA of round-trip time: a slower answer than the estimate replaces it at once
 * (so a struggling endpoint is avoided immediately), a faster one is blended in; and the estimate
 * decays toward zero while no answers come, so an idle endpoint gets tried again.
 */
export class PeakEwma {
  private estimate: number;
  private updatedAt: number;

  constructor(now: number, initialMs = DEFAULT_RTT_MS) {
    this.estimate = initialMs;
    this.updatedAt = now;
  }

  /** The estimate as of `now`, decayed for the time since the last update. */
  value(now: number): number {
    const elapsed = now - this.updatedAt;
    if (elapsed <= 0) return this.estimate;
    this.estimate *= Math.exp(-elapsed / EWMA_DECAY_MS);
    this.updatedAt = now;
    return this.estimate;
  }

  observe(rttMs: number, now: number): void {
    if (rttMs > this.estimate) {
      this.estimate = rttMs;
    } else {
      const decay = Math.exp(-Math.max(now - this.updatedAt, 0) / EWMA_DECAY_MS);
      this.estimate = this.estimate * decay + rttMs * (1 - decay);
    }
    this.updatedAt = now;
  }
}

/** What the balancer knows of one endpoint; `target` is the caller's own description of it. */
export class EndpointState<T> {
  pending = 0;
  failures = 0;
  backoffUntil = 0;
  readonly ewma: PeakEwma;

  constructor(
    readonly key: string,
    public target: T,
    now: number,
  ) {
    this.ewma = new PeakEwma(now);
  }

  cost(now: number): number {
    return this.ewma.value(now) * (this.pending + 1);
  }

  inBackoff(now: number): boolean {
    return this.backoffUntil > now;
  }
}

export interface BalancerOptions {
  /** Milliseconds on a monotonic clock. */
  clock?: () => number;
  /** Uniform in [0, 1). */
  random?: () => number;
}

export class Balancer<T> {
  private states: EndpointState<T>[] = [];
  private nextIndex = 0;
  /** No endpoint is in back-off after this time, so picks before it must check. */
  private backoffHorizon = 0;
  readonly clock: () => number;
  private readonly random: () => number;

  constructor(
    public kind: LoadBalancer,
    options: BalancerOptions = {},
  ) {
    this.clock = options.clock ?? (() => performance.now());
    this.random = options.random ?? Math.random;
  }

  get endpoints(): readonly EndpointState<T>[] {
    return this.states;
  }

  /** Replaces the endpoint set; endpoints whose key stays keep their latency and back-off state. */
  update(targets: readonly T[], keyOf: (target: T) => string): void {
    const previous = new Map(this.states.map((s) => [s.key, s]));
    const now = this.clock();
    this.states = targets.map((target) => {
      const key = keyOf(target);
      const kept = previous.get(key);
      if (!kept) return new EndpointState(key, target, now);
      kept.target = target;
      return kept;
    });
  }

  /**
   * Picks an endpoint, never one in `exclude` (those already tried for this request). Endpoints in
   * back-off are used only when nothing else is left. Undefined when every endpoint is excluded.
   */
  pick(exclude?: ReadonlySet<EndpointState<T>>): EndpointState<T> | undefined {
    let candidates = this.states;
    const now = this.clock();
    if ((exclude !== undefined && exclude.size > 0) || now < this.backoffHorizon) {
      const allowed = exclude ? candidates.filter((s) => !exclude.has(s)) : candidates;
      const healthy = allowed.filter((s) => !s.inBackoff(now));
      candidates = healthy.length > 0 ? healthy : allowed;
    }
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) return candidates[0];
    if (this.kind === 'round-robin') {
      this.nextIndex = (this.nextIndex + 1) % n;
      return candidates[this.nextIndex];
    }
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.cost(now) < a.cost(now) ? b : a;
  }

  /** A request to `state` starts; returns its start time for `finished`. */
  started(state: EndpointState<T>): number {
    state.pending++;
    return this.clock();
  }

  /** The request that started at `startedAt` got its answer (or failed) now. */
  finished(state: EndpointState<T>, startedAt: number): void {
    state.pending--;
    const now = this.clock();
    state.ewma.observe(now - startedAt, now);
  }

  /** Connecting to `state` failed: it sits out a back-off that doubles with each consecutive failure. */
  connectFailed(state: EndpointState<T>): void {
    state.failures++;
    const delay = Math.min(BACKOFF_INITIAL_MS * 2 ** Math.min(state.failures - 1, 20), BACKOFF_MAX_MS);
    state.backoffUntil = this.clock() + delay;
    this.backoffHorizon = Math.max(this.backoffHorizon, state.backoffUntil);
  }

  connected(state: EndpointState<T>): void {
    if (state.failures === 0) return;
    state.failures = 0;
    state.backoffUntil = 0;
  }
}
