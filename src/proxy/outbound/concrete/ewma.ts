// Peak-EWMA latency, as Linkerd's balancer keeps it per endpoint.

/** A new endpoint's RTT estimate before any answer (Linkerd's default). */
export const DEFAULT_RTT_MS = 30;
/** How fast the estimate forgets: an observation's weight falls to 1/e after this long. */
export const EWMA_DECAY_MS = 10_000;

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
