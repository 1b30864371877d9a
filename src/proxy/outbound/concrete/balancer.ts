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
import type { LoadBalancer } from '../../destinations.js';
import { DEFAULT_RTT_MS, PeakEwma } from './ewma.js';

export const BACKOFF_INITIAL_MS = 500;
export const BACKOFF_MAX_MS = 10_000;

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
  /** Told of every answer a lease reports, e.g. for the endpoint's latency histogram. */
  onAnswer?: (target: T, status: number, ms: number) => void;
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
  readonly onAnswer: ((target: T, status: number, ms: number) => void) | undefined;

  constructor(
    public kind: LoadBalancer,
    options: BalancerOptions<T> = {},
  ) {
    this.clock = options.clock ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.tierOf = options.tierOf ?? (() => 0);
    this.sharedBackoffOf = options.sharedBackoffOf ?? (() => undefined);
    this.onAnswer = options.onAnswer;
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

  /** Hands `state` (a pick) to one request: the request counts in flight until it settles through the lease. */
  lease(state: EndpointState<T>): Lease<T> {
    return new Lease(this, state);
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

  /** The request to `state` ended without a round trip to time (its connect failed). */
  abandoned(state: EndpointState<T>): void {
    state.pending--;
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

/** What the stage that talks to an endpoint reports about it; the books follow from it. */
export interface EndpointHandle {
  /** A connection to the endpoint is up: a back-off it sat out is over. */
  connected(): void;
  /** The endpoint answered `status` `ms` after the request went out (status 0: no answer came). */
  finished(status: number, ms: number): void;
  /**
   * Connecting failed before anything was sent: the endpoint sits out a back-off. An error with
   * `unreachable` set (a ConnectFailed) says its gateway could not be reached: the shared back-off too.
   */
  failed(error: Error & { unreachable?: boolean }): void;
}

/**
 * One request's pick of one endpoint: it counts in flight from the pick until finished or failed
 * (once; later reports of the same request are ignored). The only way callers change the books.
 */
export class Lease<T> implements EndpointHandle {
  private open = true;

  constructor(
    private readonly balancer: Balancer<T>,
    readonly state: EndpointState<T>,
  ) {
    balancer.started(state);
  }

  get target(): T {
    return this.state.target;
  }

  connected(): void {
    this.balancer.connected(this.state);
  }

  finished(status: number, ms: number): void {
    if (!this.open) return;
    this.open = false;
    this.balancer.finished(this.state, this.balancer.clock() - ms);
    if (status > 0) this.balancer.onAnswer?.(this.state.target, status, ms);
  }

  failed(error: Error & { unreachable?: boolean }): void {
    if (!this.open) return;
    this.open = false;
    this.balancer.abandoned(this.state);
    this.balancer.connectFailed(this.state, error.unreachable === true);
  }
}
