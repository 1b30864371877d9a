// The control plane's admin API: what the CLI and the dashboard use to read and change a cluster.
// JSON over HTTP/1.1 on a Unix socket in the cluster's state directory (only its owner can reach it).
// On Kubernetes it listens on the control-plane pod's admin port and serves no resources: those are
// read and changed through the Kubernetes API, under its authorization.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, unlinkSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { InfoResponse } from '../api/gen/strait/mesh/v1/mesh_pb.js';
import { listen } from '../api/listen.js';
import type { LabelSelector, Resource, ResourceRef } from '../api/types.js';
import { ConflictError, ExpiredError, NotFoundError, type Store } from '../store/store.js';
import type { ServiceListing } from './discovery/listing.js';
import type { TrafficWindow } from './metrics/history.js';

/** Where an admin API listens: the Unix socket of a local cluster, or a control-plane pod's admin port on Kubernetes. */
export type AdminEndpoint = string | { host: string; port: number };

/** The control plane's admin port on Kubernetes (Linkerd's control plane serves its admin on 9990 too). */
export const ADMIN_PORT = 9990;

/** The cluster's resources, when the admin API serves them (the local runtime's store). */
export interface AdminResources {
  store: Store;
  /** Problems that make the objects unacceptable in this cluster (beyond their own schema). */
  admit(objects: Resource[]): Promise<string[]>;
  /** A pod container's log, optionally following it; undefined when there is none. */
  logs(ref: { namespace: string; pod: string; container?: string }, opts: { follow: boolean; tail?: number }): Promise<Readable | undefined>;
  /** Stops the control plane (and its pods, if asked). Called after the answer is sent. */
  shutdown(opts: { stopPods: boolean }): void;
}

export interface AdminHooks {
  /** Absent on Kubernetes. */
  resources?: AdminResources;
  /** Links and the mesh API; absent when this control plane does not run them. */
  multicluster?: MulticlusterHooks;
  /** The cluster's gateway, when this control plane runs it. */
  gateway?: GatewayHooks;
  /** What each meshed pod's proxy counted over the last `windowSeconds`; absent when metrics are not collected. */
  stats?(windowSeconds: number): Promise<TrafficWindow>;
  /** Every service callers in this cluster can name, with its backends, their state and tiers (from discovery's cache). */
  services?(options: { namespace?: string }): ServiceListing;
  /** The certificates the cluster's CA signs under (never a key), for `strait check`. */
  identity?(): IdentityReport;
}

/** The control plane's own certificate chain (its certificate, then the issuer it was signed by) and trust anchors, PEM. */
export interface IdentityReport {
  trustDomain: string;
  certChainPem: string;
  trustBundlePem: string;
}

export interface GatewayStatusReport {
  address: string;
  running: boolean;
  stats?: unknown;
}

export interface GatewayHooks {
  status(): GatewayStatusReport;
  setRunning(running: boolean): Promise<void>;
}

/** What a cluster tells others about itself (the mesh API's Info), for `strait link`. */
export type ClusterInfo = Pick<InfoResponse, 'cluster' | 'clusterId' | 'gatewayAddress' | 'trustAnchorFingerprints' | 'trustDomain' | 'version'>;

/** A link credential this cluster minted, for the cluster named `consumer`. */
export interface IssuedCredential {
  token: string;
  id: string;
  consumer: string;
  expiresAt: string;
}

/** Links and the mesh API (src/control/links/multicluster.ts implements them). */
export interface MulticlusterHooks {
  info(): ClusterInfo;
  mintCredential(request: { consumer: string; selector?: LabelSelector; lifetimeMs?: number }): Promise<IssuedCredential>;
  /** Revokes the credentials minted for `consumer`: only `only`, all but `except`, or all. */
  revokeCredentials(request: { consumer: string; only?: string; except?: string }): Promise<{ revoked: string[] }>;
  /** The link controllers' and the mesh API's state. */
  status(): unknown;
}

export interface AdminInfo {
  cluster: string;
  version: string;
}

const MAX_BODY = 64 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: string[],
  ) {
    super(message);
  }
}

export function startAdminServer(at: AdminEndpoint, info: AdminInfo, hooks: AdminHooks): Promise<Server> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
    const q = url.searchParams;
    const route = `${req.method} /${parts[0] ?? ''}`;
    switch (route) {
      case 'GET /healthz':
        return send(res, 200, { ...info, pid: process.pid, ready: true });
      case 'GET /resources': {
        const kind = need(parts[1], 'kind');
        if (parts.length >= 3) {
          const ref = refFrom(kind, parts[2]!, parts[3]);
          const obj = await resources().store.get(ref);
          if (!obj) throw new HttpError(404, `${kind} "${ref.name}" not found${ref.namespace ? ` in namespace "${ref.namespace}"` : ''}`);
          return send(res, 200, obj);
        }
        const namespace = q.get('namespace') ?? undefined;
        const labelSelector = q.get('selector') ?? undefined;
        return send(res, 200, await resources().store.list(kind, { namespace, labelSelector }));
      }
      case 'POST /apply': {
        const body = (await readJson(req)) as { objects?: Resource[]; dryRun?: boolean };
        const objects = body.objects ?? [];
        const { store } = resources();
        const problems = await resources().admit(objects);
        if (problems.length > 0) throw new HttpError(422, 'the objects were refused; nothing was changed', problems);
        if (body.dryRun) return send(res, 200, { results: objects.map((object) => ({ outcome: 'unchanged', object })) });
        return send(res, 200, { results: await store.apply(objects) });
      }
      case 'POST /status': {
        const body = (await readJson(req)) as { ref: ResourceRef; status: unknown };
        return send(res, 200, await resources().store.updateStatus(body.ref, body.status));
      }
      case 'POST /delete': {
        const body = (await readJson(req)) as { refs?: ResourceRef[] };
        return send(res, 200, { results: await resources().store.delete(body.refs ?? []) });
      }
      case 'GET /gateway':
        if (!hooks.gateway) throw new HttpError(404, 'this control plane runs no gateway');
        return send(res, 200, hooks.gateway.status());
      case 'POST /gateway': {
        if (!hooks.gateway) throw new HttpError(404, 'this control plane runs no gateway');
        const body = (await readJson(req)) as { running?: unknown };
        if (typeof body.running !== 'boolean') throw new HttpError(400, 'say {"running": true|false}');
        await hooks.gateway.setRunning(body.running);
        return send(res, 200, hooks.gateway.status());
      }
      case 'GET /watch':
        return watch(req, res, q);
      case 'GET /logs': {
        const namespace = need(parts[1], 'namespace');
        const pod = need(parts[2], 'pod');
        const tail = q.has('tail') ? Number(q.get('tail')) : undefined;
        const stream = await resources().logs({ namespace, pod, container: q.get('container') ?? undefined }, { follow: q.get('follow') === 'true', tail });
        if (!stream) throw new HttpError(404, `no logs for pod "${pod}" in namespace "${namespace}"`);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        stream.pipe(res);
        res.on('close', () => stream.destroy());
        return;
      }
      case 'GET /stats': {
        if (!hooks.stats) throw new HttpError(404, 'this control plane does not collect metrics');
        try {
          return send(res, 200, await hooks.stats(Number(q.get('window') ?? '60')));
        } catch (err) {
          if (err instanceof RangeError) throw new HttpError(400, err.message);
          throw err;
        }
      }
      case 'GET /identity':
        if (!hooks.identity) throw new HttpError(404, 'this control plane reports no identity');
        return send(res, 200, hooks.identity());
      case 'GET /services':
        if (!hooks.services) throw new HttpError(404, 'this control plane runs no discovery');
        return send(res, 200, hooks.services({ namespace: q.get('namespace') ?? undefined }));
      case 'GET /multicluster':
        if (parts[1] === 'status') return send(res, 200, multicluster().status());
        return send(res, 200, multicluster().info());
      case 'POST /multicluster': {
        const body = (await readJson(req)) as Record<string, unknown>;
        if (parts[1] === 'credentials') return send(res, 200, await multicluster().mintCredential(body as Parameters<MulticlusterHooks['mintCredential']>[0]));
        if (parts[1] === 'revoke') return send(res, 200, await multicluster().revokeCredentials(body as Parameters<MulticlusterHooks['revokeCredentials']>[0]));
        throw new HttpError(404, `no such admin route: POST ${url.pathname}`);
      }
      case 'POST /shutdown': {
        const body = (await readJson(req)) as { stopPods?: boolean };
        const hooksOf = resources();
        send(res, 200, { stopping: true });
        res.on('finish', () => hooksOf.shutdown({ stopPods: body.stopPods !== false }));
        return;
      }
      default:
        throw new HttpError(404, `no such admin route: ${req.method} ${url.pathname}`);
    }
  }

  function resources(): AdminResources {
    if (!hooks.resources) throw new HttpError(404, `cluster ${info.cluster} runs on Kubernetes: read and change its resources through the Kubernetes API (kubectl, or strait with --context)`);
    return hooks.resources;
  }

  function multicluster(): MulticlusterHooks {
    if (!hooks.multicluster) throw new HttpError(503, `cluster ${info.cluster} does not run links and the mesh API`);
    return hooks.multicluster;
  }

  function watch(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void {
    const { store } = resources();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const w = store.watch(
      {
        kind: q.get('kind') ?? undefined,
        namespace: q.get('namespace') ?? undefined,
        labelSelector: q.get('selector') ?? undefined,
        resourceVersion: q.get('resourceVersion') ?? undefined,
      },
      (e) => {
        res.write(JSON.stringify(e) + '\n');
      },
      (err) => {
        res.end(JSON.stringify({ type: 'ERROR', message: err.message, expired: err instanceof ExpiredError }) + '\n');
      },
    );
    req.on('close', () => {
      w.stop();
    });
  }

  if (typeof at !== 'string') return listen(server, at).then(() => server);
  try {
    unlinkSync(at);
  } catch {
    // no socket left from an earlier run
  }
  return listen(server, { path: at }).then(() => {
    chmodSync(at, 0o600);
    return server;
  });
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new HttpError(400, `missing ${what} in the path`);
  return value;
}

/** `/resources/<kind>/<namespace>/<name>`, or `/resources/<kind>/<name>` for cluster-scoped kinds. */
function refFrom(kind: string, a: string, b: string | undefined): ResourceRef {
  return b === undefined ? { kind, name: a } : { kind, namespace: a, name: b };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) return send(res, err.status, { error: err.message, details: err.details });
  if (err instanceof NotFoundError) return send(res, 404, { error: err.message });
  if (err instanceof ConflictError) return send(res, 409, { error: err.message });
  // The store refuses malformed objects and references with a TypeError that says which and why.
  if (err instanceof TypeError) return send(res, 400, { error: err.message });
  return send(res, 500, { error: (err as Error).message ?? String(err) });
}
