// The node agent's Kubernetes API client: plain REST calls and list-then-watch streams over the
// kubeconfig's TLS credentials, as the kubelet makes them (its Node, its Lease, its pods' status,
// token requests).
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig, Watch } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

const REQUEST_TIMEOUT_MS = 15_000;
const RELIST_MS = { initial: 200, max: 10_000 };

export interface WatchHandlers<T> {
  /** The whole current list: after the first list and after every relist. */
  synced(items: T[]): void;
  changed(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void;
}

export class KubeApi {
  readonly server: URL;

  constructor(readonly config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  /** Throws KubeConfigError naming the file and what is wrong: missing, unreadable, no such context. */
  static fromFile(path: string, context?: string): KubeApi {
    const config = new KubeConfig();
    try {
      config.loadFromFile(path);
    } catch (err) {
      throw new KubeConfigError(`cannot read the kubeconfig ${path}: ${(err as Error).message}`);
    }
    if (context) {
      const names = config.getContexts().map((c) => c.name);
      if (!names.includes(context)) throw new KubeConfigError(`context "${context}" is not in ${path}; it has: ${names.join(', ') || 'none'}`);
      config.setCurrentContext(context);
    }
    return new KubeApi(config);
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const options: RequestOptions = { method, host: this.server.hostname, port: this.server.port || 443, path, timeout: REQUEST_TIMEOUT_MS };
    await this.config.applyToHTTPSOptions(options);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    options.headers = { ...options.headers, accept: 'application/json', ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}) };
    return new Promise<T>((resolve, reject) => {
      const req = httpsRequest(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const parsed = text ? (JSON.parse(text) as { reason?: string; message?: string }) : {};
          if ((res.statusCode ?? 500) >= 300) reject(new KubeApiError(res.statusCode ?? 500, parsed.reason ?? '', `${method} ${path}: ${res.statusCode} ${parsed.message ?? text}`));
          else resolve(parsed as T);
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer from ${this.server.host} in ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * Lists `path` and watches it from the list's resourceVersion; when the watch ends (a 410, the
   * server closing it, an error), lists again after a back-off and hands over the whole new list.
   * Returns a function that stops it.
   */
  listWatch<T>(path: string, query: Record<string, string>, handlers: WatchHandlers<T>, onError: (err: Error) => void): () => void {
    let stopped = false;
    let abort: AbortController | undefined;
    let failures = 0;
    const watcher = new Watch(this.config);
    const relist = () => {
      if (stopped) return;
      const delay = failures === 0 ? 0 : Math.min(RELIST_MS.max, RELIST_MS.initial * 2 ** failures);
      setTimeout(() => void cycle(), delay).unref();
    };
    const cycle = async () => {
      try {
        const params = new URLSearchParams(query).toString();
        const list = await this.request<{ items: T[]; metadata: { resourceVersion: string } }>('GET', `${path}${params ? `?${params}` : ''}`);
        if (stopped) return;
        handlers.synced(list.items);
        abort = await watcher.watch(
          path,
          { ...query, resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
          (type: string, object: T) => {
            failures = 0;
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') handlers.changed(type, object);
          },
          (err: unknown) => {
            if (err) {
              failures++;
              onError(err instanceof Error ? err : new Error(JSON.stringify(err)));
            }
            relist();
          },
        );
      } catch (err) {
        failures++;
        onError(err as Error);
        relist();
      }
    };
    void cycle();
    return () => {
      stopped = true;
      abort?.abort();
    };
  }
}
