// Quantiles from histogram buckets, computed as Prometheus' histogram_quantile() does: find the
// bucket holding the rank and interpolate linearly inside it.

/** One cumulative bucket: observations at or below `le`. */
export interface Bucket {
  le: number;
  count: number;
}

/**
 * The `q`-quantile (0 ≤ q ≤ 1) of cumulative buckets; NaN when there are no observations or no
 * `+Inf` bucket. A rank in the `+Inf` bucket gives the highest finite bound, as Prometheus does.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  if (sorted.length < 2 || sorted.at(-1)!.le !== Infinity) return NaN;
  // Counts scraped at slightly different moments can dip; Prometheus repairs that by taking the running maximum.
  let max = 0;
  const counts = sorted.map((b) => (max = Math.max(max, b.count)));
  const total = counts.at(-1)!;
  if (total === 0) return NaN;
  const rank = q * total;
  // The +Inf bucket holds every observation, so some bucket always reaches the rank.
  const i = counts.findIndex((c) => c >= rank);
  if (i === sorted.length - 1) return sorted[sorted.length - 2]!.le;
  if (i === 0 && sorted[0]!.le <= 0) return sorted[0]!.le;
  const start = i === 0 ? 0 : sorted[i - 1]!.le;
  const end = sorted[i]!.le;
  const below = i === 0 ? 0 : counts[i - 1]!;
  const inBucket = counts[i]! - below;
  return start + (end - start) * ((rank - below) / inBucket);
}

/** Adds cumulative buckets of several series into one set (Prometheus' `sum by (le)`). */
export function mergeBuckets(target: Map<number, number>, buckets: readonly Bucket[]): void {
  for (const b of buckets) target.set(b.le, (target.get(b.le) ?? 0) + b.count);
}

export function bucketsOf(merged: ReadonlyMap<number, number>): Bucket[] {
  return [...merged].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}
