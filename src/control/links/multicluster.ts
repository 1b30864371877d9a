// A control plane's multi-cluster side, started in one call: the mesh API (what linked clusters may
// read of this one, on its own port), a link controller for every Link here (what this cluster
// reads of others) and the clusterset controller (the ServiceImports those make). Also the admin hooks `strait link` uses: this cluster's info, and minting and
// revoking link credentials.
import type { Logger } from 'pino';
import { z } from 'zod';
import { LabelSelectorSchema } from '../../api/kinds/define.js';
import { MULTICLUSTER_NAMESPACE, type LinkStatus } from '../../api/kinds/strait.js';
import type { Resource } from '../../api/types.js';
import type { TlsIdentity } from '../../identity/tls.js';
import type { Store } from '../../store/store.js';
import type { ClusterInfo, MulticlusterHooks } from '../admin.js';
import { LinkGrants } from '../mesh-api/credentials.js';
import { startMeshApiServer, type MeshApiService } from '../mesh-api/server.js';
import { ClustersetController } from './clusterset.js';
import { LinkManager } from './manager.js';

export interface MulticlusterOptions {
  store: Store;
  /** This cluster's name. */
  cluster: string;
  trustDomain: string;
  /** The control plane's own certificate (spiffe://<td>/ns/strait-system/sa/control-plane). */
  identity: TlsIdentity;
  /** The HMAC key link credentials are signed with (at least 32 bytes; keep it like the identity token key). */
  credentialKey: Buffer;
  /** Where the mesh API listens (the control plane's address, port 8087 — MESH_API_PORT). */
  listen: { host: string; port: number };
  /** `host:port` of this cluster's gateway as other clusters reach it (may differ from where it listens, e.g. behind NAT). */
  gatewayAddress: string;
  /** The cluster's region (mesh.json), told to linked clusters for failover by region. */
  region?: string;
  /** Namespace sameness for every Link that does not set its own (`strait up --sameness`). */
  sameness: boolean;
  log: Logger;
}

export interface MulticlusterStatus {
  cluster: string;
  clusterId: string;
  meshApi: { address: string; streams: number };
  /** By target cluster. */
  links: Record<string, LinkStatus>;
}

export interface Multicluster {
  /** Where the mesh API listens. */
  readonly meshApiAddress: { host: string; port: number };
  /** For the admin API (`AdminHooks.multicluster`). */
  readonly admin: MulticlusterHooks;
  /** The running link controllers, for tests. */
  readonly links: LinkManager;
  /** The ServiceImports and conflict conditions, for tests. */
  readonly clusterset: ClustersetController;
  /** This cluster's exported services, as they change (what its gateway routes to). */
  followExports: MeshApiService['followExports'];
  status(): MulticlusterStatus;
  /** Stops the link controllers (the mirrors stay) and the mesh API; before the store closes. */
  stop(): Promise<void>;
}

/**
 * The cluster's stable id: the uid of its strait-system namespace, created on first start (as
 * Istio and Cilium take kube-system's uid), so it survives restarts and differs between clusters.
 */
export async function ensureClusterId(store: Store): Promise<string> {
  const ref = { kind: 'Namespace', name: MULTICLUSTER_NAMESPACE };
  const existing = await store.get(ref);
  const namespace: Resource = existing ?? (await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: MULTICLUSTER_NAMESPACE } }]))[0]!.object;
  return namespace.metadata.uid!;
}

const MintRequestSchema = z.object({
  consumer: z.string({ error: 'consumer: must name the cluster the credential is for' }),
  selector: LabelSelectorSchema.optional(),
  lifetimeMs: z.number().int().positive({ error: 'lifetimeMs: must be a positive integer' }).optional(),
});

export async function startMulticluster(options: MulticlusterOptions): Promise<Multicluster> {
  const { store, cluster, log } = options;
  const clusterId = await ensureClusterId(store);
  const grants = new LinkGrants(store, options.credentialKey, cluster);
  const meshApi = await startMeshApiServer({
    store,
    cluster,
    clusterId,
    trustDomain: options.trustDomain,
    identity: options.identity,
    grants,
    gatewayAddress: options.gatewayAddress,
    region: options.region,
    log: log.child({ component: 'mesh-api' }),
    ...options.listen,
  });
  const links = new LinkManager({ store, cluster, trustDomain: options.trustDomain, identity: options.identity, sameness: options.sameness, log: log.child({ component: 'links' }) });
  const clusterset = new ClustersetController({ store, cluster, log: log.child({ component: 'clusterset' }) });
  try {
    await clusterset.start();
    await links.start();
  } catch (err) {
    await clusterset.stop();
    await meshApi.close();
    throw err;
  }

  const admin: MulticlusterHooks = {
    info(): ClusterInfo {
      const { cluster: name, clusterId: id, gatewayAddress, trustAnchorFingerprints, trustDomain, version } = meshApi.service.info();
      return { cluster: name, clusterId: id, gatewayAddress, trustAnchorFingerprints, trustDomain, version };
    },
    async mintCredential(request) {
      const parsed = MintRequestSchema.safeParse(request);
      if (!parsed.success) throw new TypeError(`cannot mint a link credential: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      const issued = await grants.issue(parsed.data);
      log.info({ consumer: issued.consumer, credential: issued.id, expiresAt: issued.expiresAt }, 'link credential minted');
      return { ...issued, expiresAt: issued.expiresAt.toISOString() };
    },
    async revokeCredentials(request) {
      if (typeof request?.consumer !== 'string') throw new TypeError('cannot revoke link credentials: consumer must name a cluster');
      const revoked = await grants.revoke(request);
      if (revoked.length > 0) log.info({ consumer: request.consumer, revoked }, 'link credentials revoked');
      return { revoked };
    },
    status: () => status(),
  };

  const status = (): MulticlusterStatus => ({
    cluster,
    clusterId,
    meshApi: { address: `${meshApi.address.host}:${meshApi.address.port}`, streams: meshApi.service.streams },
    links: links.statuses(),
  });

  return {
    meshApiAddress: meshApi.address,
    admin,
    links,
    clusterset,
    status,
    followExports: (listener) => meshApi.service.followExports(listener),
    async stop() {
      await links.stop();
      await clusterset.stop();
      await meshApi.close();
    },
  };
}
