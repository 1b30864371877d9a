// The proxy's Prometheus metrics, named and labelled as Linkerd's proxy does so its dashboards and
// queries work: request_total, response_total{classification,status_code}, response_latency_ms,
// tcp_open_total, tcp_close_total, tcp_open_connections, tcp_read_bytes_total,
// tcp_write_bytes_total, each with `direction`, `authority`, `tls`, `client_id` (inbound) or
// `server_id` (outbound), `dst_service`, `dst_namespace`, `src_cluster`, `dst_cluster`, and
// `dst_backend`/`dst_pod` for the endpoint a split request went to.
//
// The request path only bumps plain numbers on a series object the caller keeps (one per route
// endpoint and authority, or per inbound connection and authority); prom-client reads them when
// scraped. That keeps label hashing off the per-request path.
import type { Socket } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Linkerd's response_latency_ms buckets, in milliseconds. */
export const LATENCY_BUCKETS_MS = [1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000];

const LABEL_NAMES = [
  'direction',
  'peer',
  'authority',
  'tls',
  'no_tls_reason',
  'client_id',
  'server_id',
  'dst_service',
  'dst_namespace',
  'dst_backend',
  'dst_pod',
  'src_cluster',
  'dst_cluster',
] as const;

export type LabelName = (typeof LABEL_NAMES)[number];
export type MetricLabels = Partial<Record<LabelName, string>>;

interface ResponseCounts {
  success: number;
  failure: number;
  /** Observations per latency bucket (not cumulative); the last slot is +Inf. */
  buckets: number[];
  sum: number;
  count: number;
}

/** The HTTP counters of one label set. */
export class HttpSeries {
  requests = 0;
  readonly byStatus = new Map<number, ResponseCounts>();

  constructor(readonly labels: MetricLabels) {}

  private counts(status: number): ResponseCounts {
    let counts = this.byStatus.get(status);
    if (!counts) {
      counts = { success: 0, failure: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), sum: 0, count: 0 };
      this.byStatus.set(status, counts);
    }
    return counts;
  }

  /** The time from the request's headers to the response's headers. */
  latency(status: number, ms: number): void {
    const counts = this.counts(status);
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    counts.buckets[i]!++;
    counts.sum += ms;
    counts.count++;
  }

  /** A response stream ended: a failure when the status is 5xx or the stream broke. */
  response(status: number, failure: boolean): void {
    const counts = this.counts(status);
    if (failure) counts.failure++;
    else counts.success++;
  }
}

/** The transport counters of one label set. */
export class TcpSeries {
  opened = 0;
  open = 0;
  closedSuccess = 0;
  closedFailure = 0;
  readBytes = 0;
  writeBytes = 0;

  constructor(readonly labels: MetricLabels) {}

  /** Counts `socket` as open now and closed (with its bytes) when it closes. */
  track(socket: Socket): void {
    this.opened++;
    this.open++;
    socket.once('close', (hadError: boolean) => {
      this.open--;
      if (hadError) this.closedFailure++;
      else this.closedSuccess++;
      this.readBytes += socket.bytesRead;
      this.writeBytes += socket.bytesWritten;
    });
  }
}

function keyOf(labels: MetricLabels): string {
  let key = '';
  for (const name of LABEL_NAMES) key += `${labels[name] ?? ''}\u0000`;
  return key;
}

/** The labels with a value; an absent label is left out of the exposition rather than shown empty. */
function present(labels: MetricLabels): MetricLabels {
  const out: MetricLabels = {};
  for (const name of LABEL_NAMES) if (labels[name] !== undefined && labels[name] !== '') out[name] = labels[name];
  return out;
}

const LATENCY_HELP = 'Time from request headers to response headers, in milliseconds.';

/**
 * response_latency_ms, filled from the series when scraped. prom-client's registry reads a
 * histogram through `getForPromString()` (its own `get()` builds on it too), so that is what this
 * provides; the method is part of prom-client's runtime, not of its typings.
 */
class SeriesHistogram extends Histogram<string> {
  constructor(
    registry: Registry,
    private readonly series: Map<string, HttpSeries>,
  ) {
    super({ name: 'response_latency_ms', help: LATENCY_HELP, labelNames: [...LABEL_NAMES, 'status_code'], buckets: LATENCY_BUCKETS_MS, registers: [registry] });
  }

  getForPromString(): Promise<{ name: string; help: string; type: string; values: HistogramSample[]; aggregator: string }> {
    const values: HistogramSample[] = [];
    const sample = (metricName: string, labels: Record<string, string | number>, value: number) => values.push({ metricName, labels, sharedLabels: {}, value });
    for (const s of this.series.values()) {
      for (const [status, counts] of s.byStatus) {
        if (counts.count === 0) continue;
        const labels = { ...s.labels, status_code: status };
        let cumulative = 0;
        for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
          cumulative += counts.buckets[i]!;
          sample('response_latency_ms_bucket', { ...labels, le: LATENCY_BUCKETS_MS[i]! }, cumulative);
        }
        sample('response_latency_ms_bucket', { ...labels, le: '+Inf' }, counts.count);
        sample('response_latency_ms_sum', labels, counts.sum);
        sample('response_latency_ms_count', labels, counts.count);
      }
    }
    return Promise.resolve({ name: 'response_latency_ms', help: LATENCY_HELP, type: 'histogram', values, aggregator: 'sum' });
  }
}

interface HistogramSample {
  metricName: string;
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly http = new Map<string, HttpSeries>();
  private readonly tcp = new Map<string, TcpSeries>();
  private readonly errors = new Map<string, { labels: { direction: string; error: string }; count: number }>();

  constructor(identityExpiry: () => Date | undefined) {
    const { registry, http, tcp, errors } = this;
    const labelNames = [...LABEL_NAMES];
    new Counter({
      name: 'request_total',
      help: 'Requests the proxy has received.',
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of http.values()) if (s.requests > 0) this.inc(s.labels, s.requests);
      },
    });
    new Counter({
      name: 'response_total',
      help: 'Responses the proxy has received, counted when the response stream ends.',
      labelNames: [...labelNames, 'status_code', 'classification'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of http.values()) {
          for (const [status, counts] of s.byStatus) {
            if (counts.success > 0) this.inc({ ...s.labels, status_code: status, classification: 'success' }, counts.success);
            if (counts.failure > 0) this.inc({ ...s.labels, status_code: status, classification: 'failure' }, counts.failure);
          }
        }
      },
    });
    new SeriesHistogram(registry, http);
    const tcpCounter = (name: string, help: string, value: (s: TcpSeries) => number) =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const s of tcp.values()) if (s.opened > 0) this.inc(s.labels, value(s));
        },
      });
    tcpCounter('tcp_open_total', 'Transport connections opened.', (s) => s.opened);
    tcpCounter('tcp_read_bytes_total', 'Bytes received on transport connections, counted when they close.', (s) => s.readBytes);
    tcpCounter('tcp_write_bytes_total', 'Bytes sent on transport connections, counted when they close.', (s) => s.writeBytes);
    new Counter({
      name: 'tcp_close_total',
      help: 'Transport connections closed.',
      labelNames: [...labelNames, 'classification'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of tcp.values()) {
          if (s.opened === 0) continue;
          if (s.closedSuccess > 0) this.inc({ ...s.labels, classification: 'success' }, s.closedSuccess);
          if (s.closedFailure > 0) this.inc({ ...s.labels, classification: 'failure' }, s.closedFailure);
        }
      },
    });
    new Gauge({
      name: 'tcp_open_connections',
      help: 'Transport connections open now.',
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of tcp.values()) if (s.opened > 0) this.set(s.labels, s.open);
      },
    });
    for (const direction of ['inbound', 'outbound'] as const) {
      new Counter({
        name: `${direction}_tcp_errors_total`,
        help: `${direction === 'inbound' ? 'Inbound' : 'Outbound'} connections that failed with a proxy error (e.g. a refused TLS peer).`,
        labelNames: ['error'],
        registers: [registry],
        collect() {
          this.reset();
          for (const e of errors.values()) if (e.labels.direction === direction) this.inc({ error: e.labels.error }, e.count);
        },
      });
    }
    new Gauge({
      name: 'identity_cert_expiration_timestamp_seconds',
      help: "When the proxy's current workload certificate expires, in seconds since the epoch.",
      registers: [registry],
      collect() {
        const expiry = identityExpiry();
        if (expiry) this.set(expiry.getTime() / 1000);
      },
    });
    collectDefaultMetrics({ register: registry });
  }

  /** The HTTP series for `labels`, made on first use. Callers keep it rather than asking per request. */
  httpSeries(labels: MetricLabels): HttpSeries {
    const key = keyOf(labels);
    let series = this.http.get(key);
    if (!series) this.http.set(key, (series = new HttpSeries(present(labels))));
    return series;
  }

  tcpSeries(labels: MetricLabels): TcpSeries {
    const key = keyOf(labels);
    let series = this.tcp.get(key);
    if (!series) this.tcp.set(key, (series = new TcpSeries(present(labels))));
    return series;
  }

  /** Counts a connection-level proxy error (`error` is a short kind such as `tls_handshake`). */
  tcpError(direction: 'inbound' | 'outbound', error: string): void {
    const key = `${direction}\u0000${error}`;
    const entry = this.errors.get(key);
    if (entry) entry.count++;
    else this.errors.set(key, { labels: { direction, error }, count: 1 });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
