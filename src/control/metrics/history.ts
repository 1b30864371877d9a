// One pod's scraped metrics over time, and what changed in them over a window.
//
// Each scrape is kept as an array of numbers, one per series (a series table per pod holds the
// names and labels once). Counters are kept reset-corrected, as Prometheus' increase() sees them: a
// value lower than the previous one, or a new proxy start time, means the proxy restarted and
// counted afresh. The increase over a window is then one subtraction per series.
import { emptyLabels, familyOf, labelsKey, parseValue, type Exposition, type Labels, type MetricType } from './exposition.js';
import type { Bucket } from './quantile.js';

/** The proxy metric families `strait stat` reads (Linkerd's names), with their types. */
export const TRAFFIC_FAMILIES: ReadonlyMap<string, 'counter' | 'gauge' | 'histogram'> = new Map([
  ['request_total', 'counter'],
  ['response_total', 'counter'],
  ['response_latency_ms', 'histogram'],
  ['tcp_open_total', 'counter'],
  ['tcp_close_total', 'counter'],
  ['tcp_open_connections', 'gauge'],
  ['tcp_read_bytes_total', 'counter'],
  ['tcp_write_bytes_total', 'counter'],
] as const);

/** The standard process metric that tells when the proxy (re)started. */
const START_TIME = 'process_start_time_seconds';

export interface MetricValue {
  metric: string;
  labels: Labels;
  value: number;
}

export interface HistogramDelta {
  metric: string;
  labels: Labels;
  /** Cumulative finite buckets; the `+Inf` bucket is `count` (JSON has no Infinity). */
  buckets: Bucket[];
  sum: number;
  count: number;
}

/** What one pod's proxy counted over a window. */
export interface PodTraffic {
  namespace: string;
  pod: string;
  address: string;
  /** Seconds the figures cover: the window, or less while the pod's history is shorter. */
  seconds: number;
  /** When the proxy was last read successfully (ISO time). */
  scrapedAt?: string;
  /** Why the last read failed, if it did. */
  error?: string;
  /** Counter increases over the window (zero increases left out). */
  counters: MetricValue[];
  /** Gauges as last read (zeros left out). */
  gauges: MetricValue[];
  /** Histogram increases over the window (empty ones left out). */
  histograms: HistogramDelta[];
}

export interface TrafficWindow {
  windowSeconds: number;
  /** When the figures were computed (ISO time). */
  at: string;
  pods: PodTraffic[];
}

type SeriesKind = 'counter' | 'gauge' | 'bucket' | 'sum' | 'count';

interface SeriesInfo {
  metric: string;
  kind: SeriesKind;
  /** Without `le`. */
  labels: Labels;
  le?: number;
  /** Histogram series of one label set share a group. */
  group: string;
}

interface Entry {
  at: number;
  /** Per series: reset-corrected counter value, or gauge value (NaN when absent). */
  values: Float64Array;
}

export interface HistoryLimits {
  /** How far back windows may reach. */
  retentionMs: number;
  /** Scrapes younger than this are all kept; older ones are thinned to one per `coarseStepMs`. */
  fineMs: number;
  coarseStepMs: number;
  /** A pod exposing more series than this has the rest ignored (and an error saying so). */
  maxSeries: number;
}

export const DEFAULT_LIMITS: HistoryLimits = { retentionMs: 10 * 60_000, fineMs: 2 * 60_000, coarseStepMs: 10_000, maxSeries: 20_000 };

export class PodHistory {
  private readonly series: SeriesInfo[] = [];
  private readonly index = new Map<string, number>();
  /** The raw value each counter series had at the last scrape; NaN when it was absent. */
  private lastRaw: number[] = [];
  private adjusted: number[] = [];
  private entries: Entry[] = [];
  private startTime: number | undefined;
  /** The proxy's start time at the first scrape: if it lies inside a window, everything counted since is in it. */
  private firstStartTime: number | undefined;
  lastError: string | undefined;
  lastScrapeAt: number | undefined;

  constructor(private readonly limits: HistoryLimits = DEFAULT_LIMITS) {}

  get scrapes(): number {
    return this.entries.length;
  }

  /** Records a scrape taken at `at` (ms since the epoch). */
  record(at: number, exposition: Exposition): void {
    const start = exposition.samples.find((s) => s.name === START_TIME && Number.isFinite(s.value));
    const startTime = start ? start.value * 1000 : undefined;
    const restarted = startTime !== undefined && this.startTime !== undefined && startTime !== this.startTime;
    if (startTime !== undefined) this.startTime = startTime;
    if (this.entries.length === 0 && startTime !== undefined) this.firstStartTime = Math.min(startTime, at);

    const types = new Map<string, MetricType>([...exposition.types, ...TRAFFIC_FAMILIES]);
    const seen = new Set<number>();
    const gauges = new Map<number, number>();
    let overflow = false;
    for (const sample of exposition.samples) {
      const { family, type, part } = familyOf(sample.name, types);
      if (!TRAFFIC_FAMILIES.has(family) || Number.isNaN(sample.value)) continue;
      const kind: SeriesKind | undefined = type === 'histogram' ? part : type === 'counter' || type === 'gauge' ? type : undefined;
      if (kind === undefined) continue;
      const idx = this.seriesIndex(sample.name, family, kind, sample.labels);
      if (idx === undefined) {
        overflow = true;
        continue;
      }
      seen.add(idx);
      if (kind === 'gauge') {
        gauges.set(idx, sample.value);
        continue;
      }
      const previous = this.lastRaw[idx]!;
      const increase = restarted || Number.isNaN(previous) || sample.value < previous ? sample.value : sample.value - previous;
      this.adjusted[idx]! += increase;
      this.lastRaw[idx] = sample.value;
    }
    const values = new Float64Array(this.series.length);
    for (let i = 0; i < this.series.length; i++) {
      if (this.series[i]!.kind === 'gauge') values[i] = gauges.get(i) ?? NaN;
      else {
        if (!seen.has(i)) this.lastRaw[i] = NaN;
        values[i] = this.adjusted[i]!;
      }
    }
    this.entries.push({ at, values });
    this.lastScrapeAt = at;
    this.lastError = overflow ? `more than ${this.limits.maxSeries} series; the rest are ignored` : undefined;
    this.prune(at);
  }

  /** Records a failed scrape; the history stays as it was. */
  fail(message: string): void {
    this.lastError = message;
  }

  private seriesIndex(name: string, family: string, kind: SeriesKind, labels: Labels): number | undefined {
    const key = `${name}{${labelsKey(labels)}}`;
    const known = this.index.get(key);
    if (known !== undefined) return known;
    let le: number | undefined;
    let own = labels;
    if (kind === 'bucket') {
      le = labels.le === undefined ? undefined : parseValue(labels.le);
      if (le === undefined || Number.isNaN(le)) return undefined;
      own = emptyLabels();
      for (const [k, v] of Object.entries(labels)) if (k !== 'le') own[k] = v;
    }
    if (this.series.length >= this.limits.maxSeries) return undefined;
    const idx = this.series.length;
    this.series.push({ metric: family, kind, labels: own, le, group: kind === 'gauge' || kind === 'counter' ? key : `${family}{${labelsKey(own)}}` });
    this.index.set(key, idx);
    this.lastRaw.push(NaN);
    this.adjusted.push(0);
    return idx;
  }

  /** Drops what no window can reach, keeping one scrape at or before the oldest window's start as its baseline. */
  private prune(now: number): void {
    const cutoff = now - this.limits.retentionMs;
    let first = 0;
    while (first + 1 < this.entries.length && this.entries[first + 1]!.at <= cutoff) first++;
    const fineFrom = now - this.limits.fineMs;
    const kept: Entry[] = [];
    for (let i = first; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      const previous = kept.at(-1);
      if (entry.at >= fineFrom || !previous || entry.at - previous.at >= this.limits.coarseStepMs) kept.push(entry);
    }
    this.entries = kept;
  }

  /** What changed over the `windowMs` before `now`. */
  window(now: number, windowMs: number): Pick<PodTraffic, 'seconds' | 'counters' | 'gauges' | 'histograms'> {
    const latest = this.entries.at(-1);
    if (!latest) return { seconds: 0, counters: [], gauges: [], histograms: [] };
    const windowStart = now - windowMs;
    let base: Entry | undefined;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i]!.at <= windowStart) {
        base = this.entries[i];
        break;
      }
    }
    if (!base) {
      // The history is shorter than the window. If the proxy started inside the window, all it
      // counted belongs to the window; otherwise only what it counted since the first scrape does.
      const fromStart = this.firstStartTime !== undefined && this.firstStartTime >= windowStart;
      base = fromStart ? { at: this.firstStartTime!, values: new Float64Array(0) } : this.entries[0]!;
    }
    const counters: MetricValue[] = [];
    const gauges: MetricValue[] = [];
    const histograms = new Map<string, HistogramDelta>();
    for (let i = 0; i < this.series.length; i++) {
      const s = this.series[i]!;
      const current = latest.values[i] ?? NaN;
      if (s.kind === 'gauge') {
        if (!Number.isNaN(current) && current !== 0) gauges.push({ metric: s.metric, labels: s.labels, value: current });
        continue;
      }
      const increase = current - (base.values[i] ?? 0);
      if (s.kind === 'counter') {
        if (increase > 0) counters.push({ metric: s.metric, labels: s.labels, value: increase });
        continue;
      }
      let h = histograms.get(s.group);
      if (!h) histograms.set(s.group, (h = { metric: s.metric, labels: s.labels, buckets: [], sum: 0, count: 0 }));
      if (s.kind === 'sum') h.sum = increase;
      else if (s.kind === 'count') h.count = increase;
      else if (s.le === Infinity) h.count ||= increase;
      else h.buckets.push({ le: s.le!, count: increase });
    }
    for (const h of histograms.values()) h.buckets.sort((a, b) => a.le - b.le);
    return {
      seconds: Math.max(0, latest.at - base.at) / 1000,
      counters,
      gauges,
      histograms: [...histograms.values()].filter((h) => h.count > 0),
    };
  }
}
