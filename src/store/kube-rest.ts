// The Kubernetes API as plain JSON over HTTP, authenticated by a kubeconfig through
// `@kubernetes/client-node`'s KubeConfig. Objects stay in wire format (client-node's typed models
// would turn timestamps into Dates and rename fields), and a watch is read as a stream that is not
// read further while its consumer is busy, so a slow consumer holds back the API server rather
// than growing a buffer here.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ConflictError, ExpiredError, NotFoundError } from './store.js';

export interface KubeConnection {
  /** Path of a kubeconfig; `KUBECONFIG` or `~/.kube/config` when absent, as kubectl reads it. */
  kubeconfig?: string;
  /**
   * In a pod: the API server from KUBERNETES_SERVICE_HOST and the ServiceAccount's files under
   * `<root>/var/run/secrets/kubernetes.io/serviceaccount` ('' in a container; a node agent's pod has
   * its volumes under its directory).
   */
  inClusterRoot?: string;
  /** A context of that kubeconfig; its current context when absent. */
  context?: string;
  /** How long a request other than a watch may take (default 30 s). */
  timeoutMs?: number;
}

/** The kubeconfig cannot be used: unreadable, or without the context asked for. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

/** No answer from the API server: it timed out, or could not be reached (`detail` says why). */
export class KubeTransportError extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'unreachable',
    readonly detail: string,
  ) {
    super(message);
    this.name = 'KubeTransportError';
  }
}

/** A `Status` the API server answered with. */
export class KubeStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeStatusError';
  }
}

interface StatusBody {
  kind?: string;
  code?: number;
  message?: string;
  reason?: string;
}

/** The store's error for an API server's answer: 404 NotFoundError, 409 ConflictError, 410 ExpiredError. */
export function storeError(status: number, body: unknown, what: string): Error {
  const s = (body ?? {}) as StatusBody;
  const message = `${what}: ${s.message ?? http.STATUS_CODES[status] ?? `HTTP ${status}`}`;
  if (status === 404) return new NotFoundError(message);
  if (status === 409) return new ConflictError(message);
  if (status === 410) return new ExpiredError(message);
  return new KubeStatusError(status, message, s.reason);
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
}

export class KubeRest {
  readonly server: URL;
  readonly context: string;
  private readonly transport: typeof http | typeof https;
  readonly timeoutMs: number;

  private constructor(
    private readonly config: KubeConfig,
    private readonly options: https.RequestOptions,
    timeoutMs: number,
  ) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig context ${config.getCurrentContext()} names no cluster`);
    this.server = new URL(cluster.server);
    this.context = config.getCurrentContext();
    this.transport = this.server.protocol === 'http:' ? http : https;
    this.timeoutMs = timeoutMs;
  }

  /** Throws KubeConfigError naming the file and what is wrong: unreadable, no such context. */
  static async connect(connection: KubeConnection = {}): Promise<KubeRest> {
    const config = new KubeConfig();
    if (connection.inClusterRoot !== undefined) config.loadFromCluster(connection.inClusterRoot);
    else if (connection.kubeconfig) {
      try {
        config.loadFromFile(connection.kubeconfig);
      } catch (err) {
        throw new KubeConfigError(`cannot read the kubeconfig ${connection.kubeconfig}: ${(err as Error).message}`);
      }
    } else config.loadFromDefault();
    if (connection.context !== undefined) {
      const contexts = config.getContexts().map((c) => c.name);
      if (!contexts.includes(connection.context)) {
        throw new KubeConfigError(`context "${connection.context}" is not in ${connection.kubeconfig ?? 'the kubeconfig'}; it has: ${contexts.join(', ') || 'none'}`);
      }
      config.setCurrentContext(connection.context);
    }
    return KubeRest.fromConfig(config, connection.timeoutMs);
  }

  /** Over a kubeconfig already loaded, at its current context. */
  static async fromConfig(config: KubeConfig, timeoutMs = 30_000): Promise<KubeRest> {
    // Read once: one keep-alive agent serves every request (client-node makes a new one per call).
    const options: https.RequestOptions = {};
    await config.applyToHTTPSOptions(options);
    // The TLS options (ca, cert, key, servername) stay on each request, which the agent honours.
    options.agent = config.getCurrentCluster()?.server.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
    return new KubeRest(config, options, timeoutMs);
  }

  /** A request with a JSON answer; an answer of 400 or more is thrown as `storeError`. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { status, body } = await this.send(method, path, opts);
    if (status >= 400) throw storeError(status, body, `${method} ${path}`);
    return body as T;
  }

  /** Like `request`, but a 404 is `undefined`. */
  async requestOrMissing<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T | undefined> {
    const { status, body } = await this.send(method, path, opts);
    if (status === 404) return undefined;
    if (status >= 400) throw storeError(status, body, `${method} ${path}`);
    return body as T;
  }

  /** A streamed GET (a watch); resolves with the open response once it answers 200. */
  stream(path: string, query: Record<string, string | undefined>): { response: Promise<http.IncomingMessage>; abort(): void } {
    let req: http.ClientRequest | undefined;
    let aborted = false;
    const response = this.headers().then(
      (headers) =>
        new Promise<http.IncomingMessage>((resolve, reject) => {
          if (aborted) return reject(new Error(`watch ${path}: aborted`));
          req = this.transport.request(this.url(path, query), { ...this.options, method: 'GET', headers });
          req.once('error', reject);
          req.once('response', (res) => {
            if (res.statusCode === 200) return resolve(res);
            void readJson(res).then((body) => reject(storeError(res.statusCode ?? 0, body, `watch ${path}`)), reject);
          });
          req.end();
        }),
    );
    return {
      response,
      abort: () => {
        aborted = true;
        req?.destroy();
      },
    };
  }

  /**
   * Each request's headers, its credentials read again: a ServiceAccount's token file is rotated by
   * the kubelet, and client-node rereads it at most once a minute, as client-go does.
   */
  private async headers(): Promise<http.OutgoingHttpHeaders> {
    const fresh: https.RequestOptions = {};
    await this.config.applyToHTTPSOptions(fresh);
    return { ...(fresh.headers as http.OutgoingHttpHeaders), Accept: 'application/json' };
  }

  close(): void {
    (this.options.agent as http.Agent).destroy();
  }

  private url(path: string, query: Record<string, string | undefined> = {}): URL {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
    return url;
  }

  /** Any request: resolves with the status and the body (JSON, or `{ message }` for text) whatever the status; rejects with a KubeTransportError when no answer comes. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: unknown }> {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers = await this.headers();
    if (payload !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const req = this.transport.request(this.url(path, opts.query), { ...this.options, method, headers, timeout: this.timeoutMs }, (res) => {
        readJson(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject);
      });
      req.once('timeout', () => req.destroy(new KubeTransportError(`${method} ${this.server.origin}${path}: no answer within ${this.timeoutMs} ms`, 'timeout', `no answer within ${this.timeoutMs} ms`)));
      req.once('error', (err) => reject(err instanceof KubeTransportError ? err : new KubeTransportError(`${method} ${this.server.origin}${path}: ${err.message}`, 'unreachable', err.message)));
      req.end(payload);
    });
  }
}

async function readJson(res: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.trim() };
  }
}
