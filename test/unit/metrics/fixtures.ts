// Proxy-like Prometheus texts written by hand for the metrics tests: the families and labels a
// Strait (or Linkerd) proxy exposes, with counts the test chooses.

export const BUCKETS = [1, 5, 10, 50, 100, 500, 1000];

export interface HttpSeriesSpec {
  labels: Record<string, string>;
  status?: number;
  success?: number;
  failure?: number;
  /** One latency observation (ms) per response; its length need not match success + failure. */
  latencies?: number[];
}

export interface ProxySpec {
  /** process_start_time_seconds. */
  startSeconds?: number;
  http?: HttpSeriesSpec[];
  tcp?: { labels: Record<string, string>; open?: number; opened?: number; readBytes?: number; writeBytes?: number }[];
}

function labelText(labels: Record<string, string | number>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** The exposition a proxy with these counts would serve. */
export function proxyText(spec: ProxySpec): string {
  const out: string[] = [];
  if (spec.startSeconds !== undefined) out.push('# TYPE process_start_time_seconds gauge', `process_start_time_seconds ${spec.startSeconds}`);
  out.push('# TYPE request_total counter');
  for (const s of spec.http ?? []) out.push(`request_total${labelText(s.labels)} ${(s.success ?? 0) + (s.failure ?? 0)}`);
  out.push('# TYPE response_total counter');
  for (const s of spec.http ?? []) {
    const status = s.status ?? 200;
    if (s.success) out.push(`response_total${labelText({ ...s.labels, status_code: status, classification: 'success' })} ${s.success}`);
    if (s.failure) out.push(`response_total${labelText({ ...s.labels, status_code: status, classification: 'failure' })} ${s.failure}`);
  }
  out.push('# TYPE response_latency_ms histogram');
  for (const s of spec.http ?? []) {
    const observed = s.latencies ?? [];
    if (observed.length === 0) continue;
    const labels = { ...s.labels, status_code: s.status ?? 200 };
    for (const le of BUCKETS) out.push(`response_latency_ms_bucket${labelText({ ...labels, le })} ${observed.filter((v) => v <= le).length}`);
    out.push(`response_latency_ms_bucket${labelText({ ...labels, le: '+Inf' })} ${observed.length}`);
    out.push(`response_latency_ms_sum${labelText(labels)} ${observed.reduce((a, b) => a + b, 0)}`);
    out.push(`response_latency_ms_count${labelText(labels)} ${observed.length}`);
  }
  out.push('# TYPE tcp_open_connections gauge');
  for (const t of spec.tcp ?? []) out.push(`tcp_open_connections${labelText(t.labels)} ${t.open ?? 0}`);
  for (const [name, key] of [
    ['tcp_open_total', 'opened'],
    ['tcp_read_bytes_total', 'readBytes'],
    ['tcp_write_bytes_total', 'writeBytes'],
  ] as const) {
    out.push(`# TYPE ${name} counter`);
    for (const t of spec.tcp ?? []) out.push(`${name}${labelText(t.labels)} ${t[key] ?? 0}`);
  }
  // Families strait stat does not read are skipped.
  out.push('# TYPE nodejs_heap_size_total_bytes gauge', 'nodejs_heap_size_total_bytes 1234567');
  return out.join('\n') + '\n';
}

/** `n` observations of `ms` each. */
export const times = (n: number, ms: number): number[] => new Array<number>(n).fill(ms);
