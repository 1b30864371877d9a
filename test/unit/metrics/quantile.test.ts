import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bucketsOf, histogramQuantile, mergeBuckets } from '../../../src/control/metrics/quantile.js';

const buckets = (pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));

describe('histogram_quantile', () => {
  // 10 observations: 4 at or below 1 ms, 8 at or below 5 ms, 10 at or below 10 ms.
  const latency = buckets([
    [1, 4],
    [5, 8],
    [10, 10],
    [Infinity, 10],
  ]);

  it('interpolates linearly inside the bucket that holds the rank', () => {
    // rank 5 lies in (1, 5]: 1 + 4 × (5 − 4) / (8 − 4) = 2
    assert.equal(histogramQuantile(0.5, latency), 2);
    // rank 9.5 lies in (5, 10]: 5 + 5 × (9.5 − 8) / 2 = 8.75
    assert.equal(histogramQuantile(0.95, latency), 8.75);
    // the first bucket starts at 0: rank 2 → 1 × 2 / 4
    assert.equal(histogramQuantile(0.2, latency), 0.5);
  });

  it('gives the highest finite bound when the rank falls in +Inf', () => {
    const slow = buckets([
      [1, 1],
      [5, 2],
      [Infinity, 10],
    ]);
    assert.equal(histogramQuantile(0.99, slow), 5);
  });

  it('takes buckets in any order, and repairs counts that dip', () => {
    const shuffled = buckets([
      [Infinity, 10],
      [10, 10],
      [1, 4],
      [5, 3], // dipped: read as 4
    ]);
    // rank 5 is now in (5, 10] since only 4 are at or below 5: 5 + 5 × 1/6
    assert.equal(histogramQuantile(0.5, shuffled), 5 + 5 * (1 / 6));
  });

  it('is NaN without observations or without a +Inf bucket; ±Inf outside 0..1', () => {
    assert.ok(Number.isNaN(histogramQuantile(0.5, buckets([[1, 0], [Infinity, 0]]))));
    assert.ok(Number.isNaN(histogramQuantile(0.5, buckets([[1, 3], [5, 4]]))));
    assert.ok(Number.isNaN(histogramQuantile(0.5, [])));
    assert.equal(histogramQuantile(-0.1, latency), -Infinity);
    assert.equal(histogramQuantile(1.1, latency), Infinity);
  });

  it('sums buckets of several series by bound', () => {
    const merged = new Map<number, number>();
    mergeBuckets(merged, buckets([[1, 1], [Infinity, 2]]));
    mergeBuckets(merged, buckets([[1, 3], [Infinity, 6]]));
    assert.deepEqual(bucketsOf(merged), buckets([[1, 4], [Infinity, 8]]));
  });
});
