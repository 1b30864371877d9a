// The client side of the admin API (src/control/admin.ts), used by the CLI and `strait up/down`.
import { request } from 'node:http';
import type { Readable } from 'node:stream';
import { UserError } from '../api/errors.js';
import type { LabelSelector, Resource, ResourceRef } from '../api/types.js';
import type { ApplyResult, DeleteResult, ListResult } from '../store/store.js';
import type { AdminEndpoint, ClusterInfo, GatewayStatusReport, IdentityReport, IssuedCredential } from './admin.js';
import type { ServiceListing } from './discovery/listing.js';
import type { TrafficWindow } from './metrics/history.js';

export class AdminError extends UserError {
  constructor(
    message: string,
    readonly status: number,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

/** The control plane is not running (no socket, or nobody listening). */
export class NotRunningError extends UserError {}

export interface Health {
  cluster: string;
  version: string;
  pid: number;
  ready: boolean;
}

export class AdminClient {
  constructor(
    readonly endpoint: AdminEndpoint,
    readonly cluster: string,
    /** How long a call may take (a local socket answers at once; a pod across a network may not). */
    private readonly timeoutMs = 30_000,
  ) {}

  private get target(): { socketPath: string } | { host: string; port: number } {
    return typeof this.endpoint === 'string' ? { socketPath: this.endpoint } : this.endpoint;
  }

  health(timeoutMs = 2000): Promise<Health> {
    return this.call('GET', '/healthz', undefined, timeoutMs) as Promise<Health>;
  }

  list(kind: string, opts: { namespace?: string; selector?: string } = {}): Promise<ListResult> {
    const q = new URLSearchParams();
    if (opts.namespace) q.set('namespace', opts.namespace);
    if (opts.selector) q.set('selector', opts.selector);
    return this.call('GET', `/resources/${enc(kind)}?${q.toString()}`) as Promise<ListResult>;
  }

  async get(ref: ResourceRef): Promise<Resource | undefined> {
    const path = ref.namespace === undefined ? `/resources/${enc(ref.kind)}/${enc(ref.name)}` : `/resources/${enc(ref.kind)}/${enc(ref.namespace)}/${enc(ref.name)}`;
    try {
      return (await this.call('GET', path)) as Resource;
    } catch (err) {
      if (err instanceof AdminError && err.status === 404) return undefined;
      throw err;
    }
  }

  async apply(objects: Resource[], dryRun = false): Promise<ApplyResult[]> {
    return ((await this.call('POST', '/apply', { objects, dryRun })) as { results: ApplyResult[] }).results;
  }

  /** Replaces an object's status (what a kubelet or a controller reports); resolves with the object. */
  updateStatus(ref: ResourceRef, status: unknown): Promise<Resource> {
    return this.call('POST', '/status', { ref, status }) as Promise<Resource>;
  }

  async delete(refs: ResourceRef[]): Promise<DeleteResult[]> {
    return ((await this.call('POST', '/delete', { refs })) as { results: DeleteResult[] }).results;
  }

  /** What each meshed pod's proxy counted over the last `windowSeconds`, read fresh. */
  stats(windowSeconds: number): Promise<TrafficWindow> {
    return this.call('GET', `/stats?window=${windowSeconds}`) as Promise<TrafficWindow>;
  }

  /** Every service callers in the cluster can name, with its backends, their state and tiers; one namespace's when given. */
  services(namespace?: string): Promise<ServiceListing> {
    return this.call('GET', `/services${namespace ? `?namespace=${enc(namespace)}` : ''}`) as Promise<ServiceListing>;
  }

  /** The cluster's name, id, gateway address and trust anchors, as linked clusters see them. */
  clusterInfo(): Promise<ClusterInfo> {
    return this.call('GET', '/multicluster') as Promise<ClusterInfo>;
  }

  /** The link controllers' and the mesh API's state. */
  multiclusterStatus(): Promise<unknown> {
    return this.call('GET', '/multicluster/status');
  }

  /** Mints (and records) a link credential for `consumer` to read this cluster's mesh API. */
  mintLinkCredential(request: { consumer: string; selector?: LabelSelector; lifetimeMs?: number }): Promise<IssuedCredential> {
    return this.call('POST', '/multicluster/credentials', request) as Promise<IssuedCredential>;
  }

  /** Revokes link credentials minted for `consumer`: only `only`, all but `except`, or all; returns the ids revoked. */
  async revokeLinkCredentials(request: { consumer: string; only?: string; except?: string }): Promise<string[]> {
    return ((await this.call('POST', '/multicluster/revoke', request)) as { revoked: string[] }).revoked;
  }

  /** The certificates the cluster's CA signs under: its own chain up to the issuer, and the trust anchors. */
  identity(): Promise<IdentityReport> {
    return this.call('GET', '/identity') as Promise<IdentityReport>;
  }

  gateway(): Promise<GatewayStatusReport> {
    return this.call('GET', '/gateway') as Promise<GatewayStatusReport>;
  }

  setGatewayRunning(running: boolean): Promise<GatewayStatusReport> {
    return this.call('POST', '/gateway', { running }) as Promise<GatewayStatusReport>;
  }

  async shutdown(stopPods: boolean): Promise<void> {
    await this.call('POST', '/shutdown', { stopPods });
  }

  logs(namespace: string, pod: string, opts: { container?: string; follow?: boolean; tail?: number }): Promise<Readable> {
    const q = new URLSearchParams();
    if (opts.container) q.set('container', opts.container);
    if (opts.follow) q.set('follow', 'true');
    if (opts.tail !== undefined) q.set('tail', String(opts.tail));
    return new Promise((resolve, reject) => {
      const req = request({ ...this.target, agent: false, path: `/logs/${enc(namespace)}/${enc(pod)}?${q.toString()}`, method: 'GET' }, (res) => {
        if (res.statusCode === 200) return resolve(res);
        void readBody(res).then((text) => reject(errorFrom(res.statusCode ?? 500, text)));
      });
      req.on('error', (err) => reject(this.connectError(err)));
      req.end();
    });
  }

  private call(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...this.target,
          agent: false,
          path,
          method,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
          timeout: timeoutMs,
        },
        (res) => {
          readBody(res).then((text) => {
            if ((res.statusCode ?? 500) >= 400) return reject(errorFrom(res.statusCode ?? 500, text));
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new AdminError(`the control plane of ${this.cluster} answered with something that is not JSON`, 502));
            }
          }, reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`the control plane of ${this.cluster} did not answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(this.connectError(err)));
      req.end(payload);
    });
  }

  private connectError(err: Error): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof this.endpoint !== 'string') return new NotRunningError(`the control plane of ${this.cluster} does not answer at ${this.endpoint.host}:${this.endpoint.port}: ${err.message}`);
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      return new NotRunningError(`cluster ${this.cluster} is not running; start it with: strait up`);
    }
    return err;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

async function readBody(res: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function errorFrom(status: number, text: string): AdminError {
  try {
    const body = JSON.parse(text) as { error?: string; details?: string[] };
    return new AdminError(body.error ?? text, status, body.details ?? []);
  } catch {
    return new AdminError(text || `HTTP ${status}`, status);
  }
}
