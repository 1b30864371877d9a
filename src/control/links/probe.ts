// Gateway probes: a fresh TLS connection to the remote gateway with its probe route key, `GET
// /ready`, and the answer must name the cluster the link is for. A fresh connection each time, so
// a gateway that stopped accepting connections is not taken for alive over an old one; the time
// it takes (TCP, TLS and the request) is the link's latency.
//
// GatewayHealth is the state machine: `failureThreshold` consecutive failures mark the gateway down
// (its endpoints are then written not ready), one success marks it up again. A failure short of
// the threshold is confirmed sooner than the probe period, so a dead gateway is taken out of
// rotation within about a second of the first failed probe rather than after `threshold × period`.
import https from 'node:https';
import { probeRouteKey } from '../../api/route-keys.js';
import { parseSpiffeId } from '../../identity/spiffe.js';
import { clientTlsOptions, type TlsIdentity } from '../../identity/tls.js';
import type { GatewayStatus } from '../../api/kinds/strait.js';

export type ProbeResult = { ok: true; latencyMs: number } | { ok: false; error: string };

export interface ProbeTarget {
  address: { host: string; port: number };
  /** The cluster whose gateway it is: it names the route key, and the answer must name it. */
  cluster: string;
  trustDomain: string;
  /** Presented as the client certificate (the gateway admits only mesh members to its probe). */
  identity: TlsIdentity;
  timeoutMs: number;
  /** Ends the probe at once (as failed) when aborted. */
  signal?: AbortSignal;
}

/** One probe; never rejects. */
export function probeGateway(target: ProbeTarget): Promise<ProbeResult> {
  const started = performance.now();
  const where = `${target.address.host}:${target.address.port}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      target.signal?.removeEventListener('abort', aborted);
      req.destroy();
      resolve(result);
    };
    const aborted = () => finish({ ok: false, error: `${where}: the probe was stopped` });
    const req = https.request(
      {
        host: target.address.host,
        port: target.address.port,
        method: 'GET',
        path: '/ready',
        agent: false,
        // The gateway is a mesh member of the same trust domain; which one is checked by its answer.
        ...clientTlsOptions(target.identity, (id) => parseSpiffeId(id)?.trustDomain === target.trustDomain, { servername: probeRouteKey(target.cluster), alpn: ['http/1.1'] }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish({ ok: false, error: `${where}: ${err.message}` }));
        res.on('end', () => {
          const latencyMs = performance.now() - started;
          if (res.statusCode !== 200) return finish({ ok: false, error: `${where} answered HTTP ${res.statusCode} to GET /ready` });
          let answer: { cluster?: unknown; ready?: unknown };
          try {
            answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof answer;
          } catch {
            return finish({ ok: false, error: `${where} answered GET /ready with something that is not JSON` });
          }
          if (answer.cluster !== target.cluster) return finish({ ok: false, error: `the gateway at ${where} is cluster ${JSON.stringify(answer.cluster)}'s, not ${target.cluster}'s` });
          if (answer.ready !== true) return finish({ ok: false, error: `the gateway at ${where} says it is not ready` });
          finish({ ok: true, latencyMs });
        });
      },
    );
    req.on('error', (err) => finish({ ok: false, error: `${where}: ${err.message}` }));
    const timer = setTimeout(() => finish({ ok: false, error: `${where}: no answer within ${target.timeoutMs} ms` }), target.timeoutMs);
    if (target.signal?.aborted) return aborted();
    target.signal?.addEventListener('abort', aborted, { once: true });
    req.end();
  });
}

/** How soon a failure short of the threshold is confirmed. */
export const CONFIRM_DELAY_MS = 500;
/** Latency percentiles are over this many recent successful probes. */
const LATENCY_WINDOW = 100;

export class GatewayHealth {
  /** Undefined until a probe succeeds or the threshold of failures is reached. */
  alive: boolean | undefined;
  consecutiveFailures = 0;
  lastError: string | undefined;
  lastProbeTime: Date | undefined;
  private readonly latencies: number[] = [];

  constructor(readonly failureThreshold: number) {}

  /** Whether endpoints behind the gateway take traffic: unless it is known to be down. */
  get usable(): boolean {
    return this.alive !== false;
  }

  /** Records a probe's result; true when `alive` changed. */
  record(result: ProbeResult, at = new Date()): boolean {
    const before = this.alive;
    this.lastProbeTime = at;
    if (result.ok) {
      this.consecutiveFailures = 0;
      this.lastError = undefined;
      this.latencies.push(result.latencyMs);
      if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
      this.alive = true;
    } else {
      this.consecutiveFailures++;
      this.lastError = result.error;
      if (this.consecutiveFailures >= this.failureThreshold) this.alive = false;
    }
    return this.alive !== before;
  }

  /** When to probe next: sooner while a failure awaits confirmation. */
  nextDelayMs(periodMs: number): number {
    return this.consecutiveFailures > 0 && this.alive !== false ? Math.min(periodMs, CONFIRM_DELAY_MS) : periodMs;
  }

  /** p50/p95/p99 (nearest rank) of recent successful probes, in ms with one decimal. */
  latency(): { p50: number; p95: number; p99: number } | undefined {
    if (this.latencies.length === 0) return undefined;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (p: number) => Math.round(sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! * 10) / 10;
    return { p50: at(50), p95: at(95), p99: at(99) };
  }

  status(): GatewayStatus {
    const latency = this.latency();
    return {
      ...(this.alive === undefined ? {} : { alive: this.alive }),
      ...(latency ? { latencyMs: latency } : {}),
      ...(this.lastProbeTime ? { lastProbeTime: this.lastProbeTime.toISOString() } : {}),
      consecutiveFailures: this.consecutiveFailures,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }
}
