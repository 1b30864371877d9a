import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseExposition } from '../../../src/control/metrics/exposition.js';
import { DEFAULT_LIMITS, PodHistory } from '../../../src/control/metrics/history.js';
import { histogramQuantile } from '../../../src/control/metrics/quantile.js';
import { proxyText, times, type ProxySpec } from './fixtures.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const S = 1000;
const IN = { direction: 'inbound', authority: 'helloworld:5000' };
/** A proxy that started an hour before T0. */
const OLD_START = (T0 - 3600 * S) / 1000;

function record(h: PodHistory, at: number, spec: ProxySpec): void {
  h.record(at, parseExposition(proxyText(spec)));
}

function successes(h: PodHistory, now: number, windowMs: number): number {
  const w = h.window(now, windowMs);
  return w.counters.filter((c) => c.metric === 'response_total' && c.labels.classification === 'success').reduce((a, c) => a + c.value, 0);
}

describe('pod metric history', () => {
  it('gives counter increases over the window, from the newest scrape at or before its start', () => {
    const h = new PodHistory();
    record(h, T0, { startSeconds: OLD_START, http: [{ labels: IN, success: 10 }] });
    record(h, T0 + 30 * S, { startSeconds: OLD_START, http: [{ labels: IN, success: 25 }] });
    record(h, T0 + 60 * S, { startSeconds: OLD_START, http: [{ labels: IN, success: 40, failure: 2 }] });
    const w = h.window(T0 + 60 * S, 60 * S);
    assert.equal(w.seconds, 60);
    assert.equal(successes(h, T0 + 60 * S, 60 * S), 30);
    const failures = w.counters.find((c) => c.metric === 'response_total' && c.labels.classification === 'failure');
    assert.equal(failures?.value, 2, 'a series that appears inside the window counts from 0');
    assert.equal(successes(h, T0 + 60 * S, 30 * S), 15);
    assert.equal(h.window(T0 + 60 * S, 30 * S).seconds, 30);
  });

  it('handles counter resets: a lower value means the proxy restarted and counted afresh', () => {
    const h = new PodHistory();
    record(h, T0, { http: [{ labels: IN, success: 100 }] });
    record(h, T0 + 2 * S, { http: [{ labels: IN, success: 120 }] });
    record(h, T0 + 4 * S, { http: [{ labels: IN, success: 5 }] });
    record(h, T0 + 6 * S, { http: [{ labels: IN, success: 9 }] });
    assert.equal(successes(h, T0 + 6 * S, 6 * S), 20 + 5 + 4);
  });

  it('sees a restart by the proxy start time even when the new count is higher than the old', () => {
    const h = new PodHistory();
    record(h, T0, { startSeconds: 1000, http: [{ labels: IN, success: 10 }] });
    record(h, T0 + 2 * S, { startSeconds: 2000, http: [{ labels: IN, success: 12 }] });
    assert.equal(successes(h, T0 + 2 * S, 2 * S), 12);
  });

  it('counts a series that vanished and came back from 0', () => {
    const h = new PodHistory();
    const B = { direction: 'inbound', authority: 'other:80' };
    record(h, T0, { http: [{ labels: IN, success: 1 }, { labels: B, success: 50 }] });
    record(h, T0 + 2 * S, { http: [{ labels: IN, success: 2 }] });
    record(h, T0 + 4 * S, { http: [{ labels: IN, success: 3 }, { labels: B, success: 4 }] });
    const w = h.window(T0 + 4 * S, 4 * S);
    const b = w.counters.find((c) => c.metric === 'response_total' && c.labels.authority === 'other:80');
    assert.equal(b?.value, 4);
  });

  it('with a history shorter than the window, counts what the proxy counted since it started if that is inside the window', () => {
    const young = new PodHistory();
    record(young, T0, { startSeconds: (T0 - 20 * S) / 1000, http: [{ labels: IN, success: 7 }] });
    record(young, T0 + 2 * S, { startSeconds: (T0 - 20 * S) / 1000, http: [{ labels: IN, success: 9 }] });
    assert.equal(successes(young, T0 + 2 * S, 60 * S), 9);
    assert.equal(young.window(T0 + 2 * S, 60 * S).seconds, 22);

    // A proxy that ran long before it was first read: only what it counted since then.
    const old = new PodHistory();
    record(old, T0, { startSeconds: OLD_START, http: [{ labels: IN, success: 7000 }] });
    record(old, T0 + 2 * S, { startSeconds: OLD_START, http: [{ labels: IN, success: 7003 }] });
    assert.equal(successes(old, T0 + 2 * S, 60 * S), 3);
    assert.equal(old.window(T0 + 2 * S, 60 * S).seconds, 2);
    // A single read of such a proxy says nothing about the window yet.
    const once = new PodHistory();
    record(once, T0, { startSeconds: OLD_START, http: [{ labels: IN, success: 7000 }] });
    assert.deepEqual(once.window(T0, 60 * S).counters, []);
  });

  it('reports gauges as last read, and not once they are gone', () => {
    const h = new PodHistory();
    const tcp = { direction: 'inbound', peer: 'src' };
    record(h, T0, { tcp: [{ labels: tcp, open: 3 }] });
    record(h, T0 + 2 * S, { tcp: [{ labels: tcp, open: 2 }] });
    assert.deepEqual(
      h.window(T0 + 2 * S, 60 * S).gauges.map((g) => [g.metric, g.value]),
      [['tcp_open_connections', 2]],
    );
    record(h, T0 + 4 * S, {});
    assert.deepEqual(h.window(T0 + 4 * S, 60 * S).gauges, []);
  });

  it('gives histogram increases whose quantiles reflect only the window', () => {
    const h = new PodHistory();
    const before = times(100, 500); // slow calls before the window
    record(h, T0, { startSeconds: OLD_START, http: [{ labels: IN, success: 100, latencies: before }] });
    record(h, T0 + 60 * S, { startSeconds: OLD_START, http: [{ labels: IN, success: 120, latencies: [...before, ...times(20, 3)] }] });
    const [latency] = h.window(T0 + 60 * S, 60 * S).histograms;
    assert.equal(latency?.metric, 'response_latency_ms');
    assert.equal(latency.count, 20);
    assert.equal(latency.sum, 60);
    assert.equal(latency.labels.le, undefined);
    assert.equal(latency.labels.status_code, '200');
    assert.deepEqual(latency.buckets.map((b) => b.le), [1, 5, 10, 50, 100, 500, 1000]);
    // All 20 in (1, 5]: p50 interpolates to 1 + 4 × 10/20.
    assert.equal(histogramQuantile(0.5, [...latency.buckets, { le: Infinity, count: latency.count }]), 3);
  });

  it('keeps a bounded history that still reaches back the whole retention', () => {
    const h = new PodHistory();
    let at = T0;
    for (let i = 0; i <= 900; i++, at = T0 + i * 2 * S) record(h, at, { http: [{ labels: IN, success: i }] });
    const now = T0 + 900 * 2 * S;
    const fine = DEFAULT_LIMITS.fineMs / (2 * S);
    const coarse = (DEFAULT_LIMITS.retentionMs - DEFAULT_LIMITS.fineMs) / DEFAULT_LIMITS.coarseStepMs;
    assert.ok(h.scrapes <= fine + coarse + 3, `${h.scrapes} scrapes kept`);
    // One success per 2 s: 300 in the full ten minutes, 30 in the last minute.
    assert.equal(successes(h, now, DEFAULT_LIMITS.retentionMs), 300);
    assert.equal(successes(h, now, 60 * S), 30);
  });

  it('ignores series beyond its limit and says so', () => {
    const h = new PodHistory({ ...DEFAULT_LIMITS, maxSeries: 3 });
    record(h, T0, { http: [1, 2, 3, 4, 5].map((n) => ({ labels: { ...IN, authority: `s${n}:80` }, success: 1 })) });
    assert.match(h.lastError ?? '', /more than 3 series/);
  });
});
