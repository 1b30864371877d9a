// The mesh API (strait.mesh.v1.Mesh): the read-only view of this cluster that linked clusters get —
// its name, id, gateway address and trust anchors, and a stream of the services it exports with
// their endpoints. Served on its own HTTP/2 TLS port (only this service there), which the gateway
// reaches for the SNI `api.<cluster>.gw.strait.mesh`. Callers must be a control plane of the mesh
// (client certificate) holding a link credential this cluster minted (bearer token); a credential
// revoked or expiring while its stream is open ends the stream.
import type http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import {
  InfoResponseSchema,
  Mesh,
  ServiceRefSchema,
  WatchExportsResponseSchema,
  type ExportedService,
  type InfoResponse,
  type ServiceRef,
  type WatchExportsResponse,
} from '../../api/gen/strait/mesh/v1/mesh_pb.js';
import type { Secret } from '../../api/kinds/secret.js';
import { MULTICLUSTER_NAMESPACE } from '../../api/kinds/strait.js';
import { VERSION } from '../../api/version.js';
import { parseCertificates } from '../../identity/pem.js';
import { fingerprintSha256 } from '../../identity/pki.js';
import { controlPlaneSpiffeId } from '../../identity/spiffe.js';
import type { TlsIdentity } from '../../identity/tls.js';
import { Informer } from '../../store/informer.js';
import type { Store } from '../../store/store.js';
import { ResourceCache } from '../discovery/cache.js';
import { authenticatedCaller, peerContextValues } from '../discovery/peer.js';
import { ChangeSignal } from '../discovery/server.js';
import { createControlPlaneServer } from '../identity-service.js';
import { grantOf, LINKED_CLUSTER_LABEL, LinkCredentialRejected, type LinkGrant, type LinkGrants } from './credentials.js';
import { ExportIndex, type ExportRule } from './exports.js';

/** The mesh API's port on the control plane's address; the gateway splices `api.<cluster>…` to it. */
export const MESH_API_PORT = 8087;
/** Services per message of a stream's first answer: 10,000 exports go out in 20 messages, not one. */
const BATCH = 500;
/**
 * How long the exports of a rule no stream uses any more are kept: the gateway keeps routing to
 * them meanwhile, so a caller whose stream broke keeps reaching the endpoints it knows.
 */
const LINGER_MS = 10 * 60_000;
/** setTimeout's longest delay; a later expiry is checked again when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface MeshApiOptions {
  store: Store;
  cluster: string;
  /** A stable random id of this cluster. */
  clusterId: string;
  trustDomain: string;
  /** The control plane's own certificate; its trust bundle's anchors are the ones advertised. */
  identity: TlsIdentity;
  grants: LinkGrants;
  /** `host:port` other clusters should use for this cluster's gateway. */
  gatewayAddress: string;
  /** The cluster's region, if it has one. */
  region?: string;
  log: Logger;
}

export interface MeshApiService {
  /** Settles once the exports have been read from the store. */
  readonly ready: Promise<void>;
  info(): InfoResponse;
  /** How many export streams are open. */
  readonly streams: number;
  /**
   * Follows every service some linked cluster may be sent (what the cluster's own gateway routes
   * to): `listener` gets them now and after every change. Returns the unsubscribe.
   */
  followExports(listener: (exports: ReadonlyMap<string, ExportedService>) => void): () => void;
  close(): void;
}

/** What a caller may read, from its credential. */
interface Access {
  grant: LinkGrant;
}

/** An open export stream, so that revoking its credential can end it. */
interface OpenStream {
  credentialId: string;
  consumer: string;
  cut(reason: string): void;
}

/** SHA-256 fingerprints (`AB:CD:…`) of the anchors in a trust bundle. */
export function trustAnchorFingerprints(identity: TlsIdentity): string[] {
  return parseCertificates(identity.material().trustBundlePem, 'the trust bundle').map((c) => fingerprintSha256(c.rawData));
}

/** Serves the mesh API on `router`; the server must pass client certificates (peerContextValues). */
export function registerMeshApi(router: ConnectRouter, options: MeshApiOptions): MeshApiService {
  const { log } = options;
  const ctx = { cluster: options.cluster, trustDomain: options.trustDomain };
  /** Exports by rule; `revoked`: its consumer's credential was revoked, so it goes as soon as no stream uses it. */
  const indexes = new Map<string, { index: ExportIndex; rule: ExportRule; users: number; linger?: NodeJS.Timeout; revoked?: boolean }>();
  const cache: ResourceCache = new ResourceCache(options.store, {
    onChange: (change) => indexes.forEach(({ index }) => index.onChange(change)),
    onResync: () => indexes.forEach(({ index }) => index.rebuild()),
    warn: (message) => log.warn(message),
  });
  const ready = cache.start();
  ready.catch((err: unknown) => log.error({ err: (err as Error).message }, 'mesh API: cannot read the store'));
  const closing = new AbortController();
  const open = new Set<OpenStream>();
  // A revoked cluster's exports stop lingering: the gateway stops routing what only it was sent.
  const revocations = watchRevocations(options.store, open, log, (consumer, credentialId) => {
    // Still linked by another credential (strait link again mints a new one, then revokes the old).
    if ([...open].some((stream) => stream.consumer === consumer && stream.credentialId !== credentialId)) return;
    for (const [key, entry] of indexes) {
      if (entry.rule.consumer !== consumer) continue;
      entry.revoked = true;
      if (entry.users > 0) continue;
      clearTimeout(entry.linger);
      indexes.delete(key);
      routesChanged();
    }
  });
  const controlPlane = controlPlaneSpiffeId(options.trustDomain);

  const info = () =>
    create(InfoResponseSchema, {
      cluster: options.cluster,
      clusterId: options.clusterId,
      gatewayAddress: options.gatewayAddress,
      trustAnchorFingerprints: trustAnchorFingerprints(options.identity),
      trustDomain: options.trustDomain,
      version: VERSION,
      region: options.region ?? '',
    });

  // The gateway routes to the union of every rule's exports; a change to any is passed on once per turn.
  const routable = new Set<(exports: ReadonlyMap<string, ExportedService>) => void>();
  let routesPending = false;
  const routesChanged = () => {
    if (routesPending || routable.size === 0) return;
    routesPending = true;
    queueMicrotask(() => {
      routesPending = false;
      const union = new Map<string, ExportedService>();
      for (const { index } of indexes.values()) for (const [key, service] of index.current) union.set(key, service);
      for (const listener of routable) listener(union);
    });
  };

  /** The exports a rule allows, shared by every stream with the same rule. */
  const acquire = (rule: ExportRule) => {
    const key = JSON.stringify([rule.selector ?? null, rule.sameness, rule.consumer ?? null]);
    let entry = indexes.get(key);
    if (!entry) {
      const index = new ExportIndex(cache, rule, ctx);
      index.listen(routesChanged);
      indexes.set(key, (entry = { index, rule, users: 0 }));
      routesChanged();
    }
    clearTimeout(entry.linger);
    entry.revoked = false;
    entry.users++;
    const held = entry;
    return {
      index: held.index,
      release: () => {
        if (--held.users > 0) return;
        if (held.revoked) {
          indexes.delete(key);
          return routesChanged();
        }
        held.linger = setTimeout(() => {
          if (held.users > 0 || indexes.get(key) !== held) return;
          indexes.delete(key);
          routesChanged();
        }, LINGER_MS);
        held.linger.unref();
      },
    };
  };

  const followExports = (listener: (exports: ReadonlyMap<string, ExportedService>) => void) => {
    // What any linked cluster may be sent without asking for sameness, routed whether or not one watches.
    const { release } = acquire({ sameness: false });
    routable.add(listener);
    void ready.then(routesChanged);
    return () => {
      routable.delete(listener);
      release();
    };
  };

  const authorize = async (handler: HandlerContext): Promise<Access> => {
    const caller = authenticatedCaller(handler, options.trustDomain);
    if (caller.spiffeId !== controlPlane) {
      throw new ConnectError(`the mesh API answers only the control planes of linked clusters; ${caller.spiffeId} is not one`, Code.PermissionDenied);
    }
    const token = /^Bearer\s+(\S+)$/i.exec(handler.requestHeader.get('authorization') ?? '')?.[1];
    if (token === undefined) throw new ConnectError('no link credential: send authorization: Bearer <token> (strait link mints one)', Code.Unauthenticated);
    try {
      const { grant } = await options.grants.authorize(token);
      return { grant };
    } catch (err) {
      if (err instanceof LinkCredentialRejected) {
        log.warn({ reason: err.reason, detail: err.message }, 'mesh API: link credential refused');
        throw new ConnectError(`link credential refused (${err.reason}): ${err.message}`, Code.Unauthenticated);
      }
      throw err;
    }
  };

  const start = async (handler: HandlerContext): Promise<Access> => {
    if (closing.signal.aborted) throw new ConnectError('the mesh API is shutting down', Code.Unavailable);
    const access = await authorize(handler);
    try {
      await ready;
    } catch (err) {
      throw new ConnectError(`the mesh API cannot read the store: ${(err as Error).message}`, Code.Unavailable);
    }
    return access;
  };

  const impl: ServiceImpl<typeof Mesh> = {
    async info(_req, handler) {
      await start(handler);
      return info();
    },

    async *watchExports(req, handler): AsyncGenerator<WatchExportsResponse> {
      const { grant } = await start(handler);
      const cut = new AbortController();
      const stream: OpenStream = { credentialId: grant.id, consumer: grant.consumer, cut: (reason) => cut.abort(reason) };
      open.add(stream);
      const expiry = expiryTimer(grant.expiresAt, () => stream.cut(`link credential expired at ${grant.expiresAt.toISOString()}; run strait link again for a new one`));
      const signal = AbortSignal.any([handler.signal, closing.signal, cut.signal]);
      const { index, release } = acquire({ selector: grant.selector, sameness: req.sameness, consumer: grant.consumer });
      const changes = new ChangeSignal();
      const unlisten = index.listen(() => changes.notify());
      log.info({ consumer: grant.consumer, credential: grant.id, resumed: req.known.length, sameness: req.sameness }, 'mesh API: export stream opened');
      try {
        const held = new Map(req.known.map((k) => [`${k.namespace}/${k.name}`, k.revision]));
        let first = true;
        while (!signal.aborted) {
          for (const update of updatesFor(held, index.current, first)) yield update;
          first = false;
          await changes.next(signal);
        }
        if (cut.signal.aborted) throw new ConnectError(String(cut.signal.reason), Code.Unauthenticated);
        if (closing.signal.aborted) throw new ConnectError('the mesh API is shutting down', Code.Unavailable);
      } finally {
        unlisten();
        release();
        expiry.stop();
        open.delete(stream);
        log.info({ consumer: grant.consumer, credential: grant.id }, 'mesh API: export stream closed');
      }
    },
  };
  router.service(Mesh, impl);

  return {
    ready,
    info,
    get streams() {
      return open.size;
    },
    followExports,
    close() {
      closing.abort();
      for (const { linger } of indexes.values()) clearTimeout(linger);
      revocations.stop();
      cache.stop();
    },
  };
}

/**
 * The messages that bring a caller holding `held` (name → revision) to `current`, in batches; the
 * first answer of a stream is sent even when it changes nothing, its last message `synced`.
 * Updates `held` to what the caller will hold.
 */
export function* updatesFor(held: Map<string, string>, current: ReadonlyMap<string, ExportedService>, first: boolean): Generator<WatchExportsResponse> {
  const changed: ExportedService[] = [];
  for (const [key, service] of current) if (held.get(key) !== service.revision) changed.push(service);
  const removed: ServiceRef[] = [];
  for (const key of held.keys()) {
    if (current.has(key)) continue;
    const slash = key.indexOf('/');
    removed.push(create(ServiceRefSchema, { namespace: key.slice(0, slash), name: key.slice(slash + 1) }));
  }
  if (!first && changed.length === 0 && removed.length === 0) return;
  for (const service of changed) held.set(`${service.namespace}/${service.name}`, service.revision);
  for (const ref of removed) held.delete(`${ref.namespace}/${ref.name}`);
  const batches = Math.max(1, Math.ceil(changed.length / BATCH));
  for (let i = 0; i < batches; i++) {
    const last = i === batches - 1;
    yield create(WatchExportsResponseSchema, { services: changed.slice(i * BATCH, (i + 1) * BATCH), removed: last ? removed : [], synced: first && last });
  }
}

function expiryTimer(expiresAt: Date, onExpiry: () => void): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = expiresAt.getTime() - Date.now();
    if (left <= 0) return onExpiry();
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  arm();
  return { stop: () => clearTimeout(timer) };
}

/** Ends the open streams of credentials whose records are deleted (revoked), and tells `onRevoked` whose they were. */
function watchRevocations(store: Store, open: Set<OpenStream>, log: Logger, onRevoked: (consumer: string, credentialId: string) => void): { stop(): void } {
  // A deletion missed while the watch was down arrives as one when the informer lists again.
  const informer = new Informer<Secret>({
    store,
    kind: 'Secret',
    namespace: MULTICLUSTER_NAMESPACE,
    labelSelector: LINKED_CLUSTER_LABEL,
    warn: (message) => log.warn(`mesh API: ${message}`),
    onChange: (previous, current) => {
      if (current || !previous) return;
      const grant = grantOf(previous);
      if (!grant) return;
      for (const stream of open) {
        if (stream.credentialId === grant.id) stream.cut(`link credential ${grant.id} for cluster ${grant.consumer} was revoked (strait unlink)`);
      }
      onRevoked(grant.consumer, grant.id);
    },
  });
  informer.start().catch((err: unknown) => log.error({ err: (err as Error).message }, 'mesh API: cannot read the link credentials'));
  return { stop: () => informer.stop() };
}

export interface MeshApiServer {
  readonly address: { host: string; port: number };
  readonly service: MeshApiService;
  close(): Promise<void>;
}

/** Starts the mesh API on its own HTTP/2 TLS server (client certificates required) at `host:port`. */
export async function startMeshApiServer(options: MeshApiOptions & { host: string; port: number }): Promise<MeshApiServer> {
  let service!: MeshApiService;
  const server = createControlPlaneServer(options.identity, (router) => (service = registerMeshApi(router, options)), {
    clientCert: 'require',
    contextValues: peerContextValues,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await service.ready;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  options.log.info({ address: `${bound.address}:${bound.port}` }, 'mesh API ready');
  return {
    address: { host: bound.address, port: bound.port },
    service,
    close: async () => {
      service.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      // Streams end with Unavailable as the service closes; sessions that linger are cut.
      const cutoff = setTimeout(() => sessions.forEach((s) => s.destroy()), 1000);
      await closed;
      clearTimeout(cutoff);
    },
  };
}
