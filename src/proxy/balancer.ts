// Load balancing over one backend's ready endpoints, as Linkerd does it: power of two choices over
// peak-EWMA latency by default (two endpoints drawn at random, the cheaper one wins, where cost is
// the decayed round-trip-time estimate times the requests in flight plus one), round-robin when the
// service asks for it. An endpoint whose connect failed sits out a short, growing back-off.
//
// Endpoints come in tiers (affinity and failover: 0 is most preferred). Only the lowest tier with an
// endpoint out of back-off takes traffic; when none of it is left the next tier does, and traffic
// returns as soon as a better tier's back-off ends and a connect succeeds. Endpoints reached through
// one gateway share a back-off as well: when the gateway itself cannot be reached, all of them sit
// out at once, so a dead cluster is left in one step, with no word from the control plane.
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

/** The delay after `failures` consecutive connect failures. */
function backoffDelay(failures: number): number {
  return Math.min(BACKOFF_INITIAL_MS * 2 ** Math.min(failures - 1, 20), BACKOFF_MAX_MS);
}

/**
 * A back-off shared by the endpoints reached through one gateway (one per gateway address, for the
 * whole proxy): while it runs, none of them is tried.
 */
export class SharedBackoff {
  failures = 0;
  until = 0;

  constructor(
    /** What it stands for, e.g. the gateway's `host:port`. */
    readonly name: string,
  ) {}

  failed(now: number): void {
    this.failures++;
    this.until = now + backoffDelay(this.failures);
  }

  succeeded(): void {
    this.failures = 0;
    this.until = 0;
  }
}

/** What the balancer knows of one endpoint; `target` is the caller's own description of it. */
export class EndpointState<T> {
  pending = 0;
  failures = 0;
  backoffUntil = 0;
  /** 0 is most preferred. */
  tier = 0;
  readonly ewma: PeakEwma;

  constructor(
    readonly key: string,
    public target: T,
    now: number,
    /** The back-off this endpoint shares with others (its gateway's), if any. */
    readonly shared?: SharedBackoff,
    initialRttMs = DEFAULT_RTT_MS,
  ) {
    this.ewma = new PeakEwma(now, initialRttMs);
  }

  cost(now: number): number {
    return this.ewma.value(now) * (this.pending + 1);
  }

  inBackoff(now: number): boolean {
    return this.backoffUntil > now || (this.shared !== undefined && this.shared.until > now);
  }
}

export interface BalancerOptions<T> {
  /** Milliseconds on a monotonic clock. */
  clock?: () => number;
  /** Uniform in [0, 1). */
  random?: () => number;
  /** An endpoint's tier (0 is most preferred); all are 0 without it. */
  tierOf?: (target: T) => number;
  /** The back-off an endpoint shares with others (read when the endpoint first appears). */
  sharedBackoffOf?: (target: T) => SharedBackoff | undefined;
}

export class Balancer<T> {
  private states: EndpointState<T>[] = [];
  /** The endpoints by tier, most preferred first; no tier is empty. */
  private tiers: EndpointState<T>[][] = [];
  /** The distinct shared back-offs of the endpoints. */
  private shared: SharedBackoff[] = [];
  private nextIndex = 0;
  /** No endpoint is in back-off after this time, so picks before it must check. */
  private backoffHorizon = 0;
  readonly clock: () => number;
  private readonly random: () => number;

  private readonly tierOf: (target: T) => number;
  private readonly sharedBackoffOf: (target: T) => SharedBackoff | undefined;

  constructor(
    public kind: LoadBalancer,
    options: BalancerOptions<T> = {},
  ) {
    this.clock = options.clock ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.tierOf = options.tierOf ?? (() => 0);
    this.sharedBackoffOf = options.sharedBackoffOf ?? (() => undefined);
  }

  get endpoints(): readonly EndpointState<T>[] {
    return this.states;
  }

  /** Replaces the endpoint set; endpoints whose key stays keep their latency and back-off state. */
  update(targets: readonly T[], keyOf: (target: T) => string): void {
    const previous = new Map(this.states.map((s) => [s.key, s]));
    const now = this.clock();
    // A new endpoint starts as good as the median of those already known: a fixed guess well above
    // their measured latency would starve it at low concurrency until the guess decayed (~30 s).
    const known = this.states.map((s) => s.ewma.value(now)).sort((a, b) => a - b);
    const initialRttMs = known.length > 0 ? known[Math.floor(known.length / 2)]! : DEFAULT_RTT_MS;
    this.states = targets.map((target) => {
      const key = keyOf(target);
      const kept = previous.get(key);
      const state = kept ?? new EndpointState(key, target, now, this.sharedBackoffOf(target), initialRttMs);
      state.target = target;
      state.tier = this.tierOf(target);
      return state;
    });
    const byTier = new Map<number, EndpointState<T>[]>();
    for (const state of this.states) {
      const tier = byTier.get(state.tier);
      if (tier) tier.push(state);
      else byTier.set(state.tier, [state]);
    }
    this.tiers = [...byTier].sort(([a], [b]) => a - b).map(([, states]) => states);
    this.shared = [...new Set(this.states.flatMap((s) => (s.shared ? [s.shared] : [])))];
  }

  /**
   * Picks an endpoint, never one in `exclude` (those already tried for this request), from the most
   * preferred tier that has an endpoint out of back-off. Endpoints in back-off are used only when
   * nothing else is left (then the most preferred of them). Undefined when every endpoint is excluded.
   */
  pick(exclude?: ReadonlySet<EndpointState<T>>): EndpointState<T> | undefined {
    const now = this.clock();
    const excluding = exclude !== undefined && exclude.size > 0;
    const backingOff = now < this.backoffHorizon || this.shared.some((s) => s.until > now);
    if (!excluding && !backingOff) return this.choose(this.tiers[0] ?? [], now);
    let fallback: EndpointState<T>[] | undefined;
    for (const tier of this.tiers) {
      const allowed = excluding ? tier.filter((s) => !exclude.has(s)) : tier;
      if (allowed.length === 0) continue;
      const healthy = backingOff ? allowed.filter((s) => !s.inBackoff(now)) : allowed;
      if (healthy.length > 0) return this.choose(healthy, now);
      fallback ??= allowed;
    }
    return fallback && this.choose(fallback, now);
  }

  /** The tier traffic goes to now: the most preferred one with an endpoint out of back-off (undefined with no endpoints). */
  activeTier(): number | undefined {
    const now = this.clock();
    return (this.tiers.find((tier) => tier.some((s) => !s.inBackoff(now))) ?? this.tiers[0])?.[0]?.tier;
  }

  private choose(candidates: readonly EndpointState<T>[], now: number): EndpointState<T> | undefined {
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

  /**
   * Connecting to `state` failed: it sits out a back-off that doubles with each consecutive failure.
   * `sharedPathDown` says the failure was on the way shared with others (its gateway could not be
   * reached): they all sit out the shared back-off.
   */
  connectFailed(state: EndpointState<T>, sharedPathDown = false): void {
    const now = this.clock();
    state.failures++;
    state.backoffUntil = now + backoffDelay(state.failures);
    this.backoffHorizon = Math.max(this.backoffHorizon, state.backoffUntil);
    if (sharedPathDown) state.shared?.failed(now);
  }

  connected(state: EndpointState<T>): void {
    if (state.shared && state.shared.failures > 0) state.shared.succeeded();
    if (state.failures === 0) return;
    state.failures = 0;
    state.backoffUntil = 0;
  }
}
