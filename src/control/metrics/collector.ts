// The control plane's metrics collector: reads every meshed, running pod's proxy metrics
// (`http://<podIP>:<admin port>/metrics`) on an interval, keeps a bounded history per pod, and
// answers what changed over a window — the figures `strait stat` and the dashboard show, without
// a Prometheus to run.
import http from 'node:http';
import type { Pod } from '../../api/kinds.js';
import { isMeshed, PROXY_PORTS, proxyContainer } from '../../api/mesh.js';
import { ExpositionError, parseExposition } from './exposition.js';
import { DEFAULT_LIMITS, PodHistory, type HistoryLimits, type PodTraffic, type TrafficWindow } from './history.js';

export interface CollectorOptions {
  /** The cluster's pods as they are now; the meshed, running ones are read. */
  pods(): Promise<Pod[]>;
  /** How often every proxy is read (default 2 s). */
  intervalMs?: number;
  /** How long one read may take (default 1 s). */
  timeoutMs?: number;
  limits?: Partial<HistoryLimits>;
  /** Listing the pods failed (the round is skipped). */
  onError?(err: Error): void;
}

/**
 * Proxies read at once. Reads are started as others finish, so a round over thousands of pods is
 * many short turns of the event loop, and discovery's pushes are not held up behind it.
 */
const CONCURRENT_READS = 16;

/** A proxy answering with more than this is refused rather than read. */
const MAX_BODY = 16 * 1024 * 1024;

interface Tracked {
  namespace: string;
  name: string;
  address: string;
  url: URL;
  history: PodHistory;
}

export class MetricsCollector {
  private readonly tracked = new Map<string, Tracked>();
  private readonly limits: HistoryLimits;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private rounds: Promise<void> = Promise.resolve();
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CollectorOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.intervalMs = options.intervalMs ?? 2000;
    this.timeoutMs = options.timeoutMs ?? 1000;
  }

  /** The longest window a query may ask for, in seconds. */
  get maxWindowSeconds(): number {
    return this.limits.retentionMs / 1000;
  }

  start(): this {
    this.timer ??= setInterval(() => {
      // A round still running (a slow proxy) is not queued behind: the next tick reads again.
      if (this.pending === 0) void this.scrape();
    }, this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads every meshed, running pod once; rounds run one after another, never interleaved. */
  scrape(): Promise<void> {
    this.pending++;
    const round = this.rounds.then(() => this.scrapeAll()).finally(() => this.pending--);
    this.rounds = round.catch(() => undefined);
    return round;
  }

  /** What each pod's proxy counted over the last `windowSeconds`, read fresh. */
  async stats(windowSeconds: number): Promise<TrafficWindow> {
    if (!Number.isFinite(windowSeconds) || windowSeconds <= 0 || windowSeconds > this.maxWindowSeconds) {
      throw new RangeError(`the window must be more than 0 and at most ${this.maxWindowSeconds} seconds (the history kept), got ${windowSeconds}`);
    }
    await this.scrape();
    const now = Date.now();
    const pods: PodTraffic[] = [];
    for (const t of this.tracked.values()) {
      const { history } = t;
      pods.push({
        namespace: t.namespace,
        pod: t.name,
        address: t.address,
        ...history.window(now, windowSeconds * 1000),
        ...(history.lastScrapeAt !== undefined ? { scrapedAt: new Date(history.lastScrapeAt).toISOString() } : {}),
        ...(history.lastError !== undefined ? { error: history.lastError } : {}),
      });
    }
    pods.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
    return { windowSeconds, at: new Date(now).toISOString(), pods };
  }

  private async scrapeAll(): Promise<void> {
    let pods: Pod[];
    try {
      pods = await this.options.pods();
    } catch (err) {
      this.options.onError?.(err as Error);
      return;
    }
    const current = new Map<string, Tracked>();
    for (const pod of pods) {
      const address = pod.status?.podIP;
      if (!isMeshed(pod) || pod.status?.phase !== 'Running' || !address) continue;
      const namespace = pod.metadata.namespace ?? 'default';
      // A pod recreated under the same name (a StatefulSet's) is a new pod with a new history.
      const key = pod.metadata.uid ?? `${namespace}/${pod.metadata.name}`;
      const url = new URL(`http://${address}:${adminPort(pod)}/metrics`);
      const known = this.tracked.get(key);
      if (known) {
        known.address = address;
        known.url = url;
        current.set(key, known);
      } else current.set(key, { namespace, name: pod.metadata.name, address, url, history: new PodHistory(this.limits) });
    }
    // Deleted or stopped pods are forgotten.
    for (const key of this.tracked.keys()) if (!current.has(key)) this.tracked.delete(key);
    for (const [key, t] of current) this.tracked.set(key, t);
    const queue = [...current.values()];
    const reader = async () => {
      for (let t = queue.pop(); t; t = queue.pop()) await this.scrapeOne(t);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_READS, queue.length) }, reader));
  }

  private async scrapeOne(t: Tracked): Promise<void> {
    let text: string;
    try {
      text = await fetchText(t.url, this.timeoutMs);
    } catch (err) {
      t.history.fail(`cannot read ${t.url.href}: ${(err as Error).message}`);
      return;
    }
    try {
      t.history.record(Date.now(), parseExposition(text));
    } catch (err) {
      if (!(err instanceof ExpositionError)) throw err;
      t.history.fail(`${t.url.href} is not Prometheus text: ${err.message}`);
    }
  }
}

/** The proxy's admin port: the proxy container's port named `admin`, else the standard one. */
function adminPort(pod: Pod): number {
  const proxy = proxyContainer(pod);
  return proxy?.ports?.find((p) => p.name === 'admin')?.containerPort ?? PROXY_PORTS.admin;
}

function fetchText(url: URL, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { accept: 'text/plain' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(new Error(`HTTP ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) return fail(new Error(`the answer is over ${MAX_BODY} bytes`));
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', fail);
    });
    // A whole-request deadline: a proxy that answers one byte at a time cannot hold a round up.
    const timer = setTimeout(() => fail(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', fail);
    function fail(err: Error): void {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    }
  });
}
