// One cluster's control plane on Kubernetes (`strait control-plane --platform kubernetes`): the
// same parts as in the local runtime — the CA and discovery, the mesh API with the link and
// clusterset controllers, the gateway, the metrics collector — over the Kubernetes store. What the
// local runtime adds for want of Kubernetes (workload controllers, the pod supervisor, the admin
// socket) is Kubernetes' own here.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Pod } from '../api/kinds.js';
import { CUSTOM_KINDS } from '../api/crds.js';
import { VERSION } from '../api/version.js';
import { MULTICLUSTER_NAMESPACE } from '../api/kinds/strait.js';
import { ADMIN_PORT, startAdminServer } from '../control/admin.js';
import { startMulticluster, type Multicluster } from '../control/links/multicluster.js';
import { MESH_API_PORT } from '../control/mesh-api/server.js';
import { MetricsCollector } from '../control/metrics/collector.js';
import { CertificateAuthority } from '../identity/ca.js';
import { CredentialRejected, type CredentialVerifier } from '../identity/credentials.js';
import { loadIssuerFiles, type IssuerFiles } from '../identity/files.js';
import { Informer } from '../store/informer.js';
import { KubernetesStore } from '../store/kubernetes.js';
import type { KubeConnection } from '../store/kube-rest.js';
import type { Store } from '../store/store.js';
import { startControlPlaneApi } from './cluster.js';
import { startClusterGateway, type ClusterGateway } from './gateway.js';
import type { ListenAddress } from './settings.js';

/** The Secret that holds the key link credentials are signed with; made on first start. */
export const LINK_KEY_SECRET = 'strait-link-key';

export interface KubeControlPlaneOptions extends KubeConnection {
  cluster: string;
  trustDomain: string;
  region?: string;
  /** The trust anchor and this cluster's issuer (on Kubernetes, the issuer Secret mounted as files). */
  issuer: IssuerFiles;
  /**
   * Checks a workload's credential before its CSR is signed: its projected ServiceAccount token,
   * through TokenReview. Without one, every CSR is refused and says why.
   */
  verifier?: CredentialVerifier;
  /** Where the Connect port and the mesh API listen (the pod's address; default every address). */
  host?: string;
  gatewayListen: ListenAddress;
  /** The admin port on `host` (default ADMIN_PORT). */
  adminPort?: number;
  /** `host:port` of the gateway as other clusters reach it (its Service's address). */
  gatewayAddress: string;
  sameness?: boolean;
  log: Logger;
}

export interface KubeControlPlane {
  readonly store: KubernetesStore;
  readonly multicluster: Multicluster;
  readonly gateway: ClusterGateway;
  readonly metrics: MetricsCollector;
  readonly discovery: Awaited<ReturnType<typeof startControlPlaneApi>>['discovery'];
  stop(): Promise<void>;
}

const NO_VERIFIER: CredentialVerifier = {
  verify: () => Promise.reject(new CredentialRejected('invalid-claims', 'this control plane checks no workload credentials (no TokenReview verifier configured)')),
};

export async function startKubeControlPlane(options: KubeControlPlaneOptions): Promise<KubeControlPlane> {
  const { cluster, log } = options;
  const store = await KubernetesStore.connect(options);
  const stops: (() => Promise<void> | void)[] = [() => store.close()];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    await requireCustomResources(store);
    const ca = new CertificateAuthority({ issuer: await loadIssuerFiles(options.issuer), trustDomain: options.trustDomain });
    const host = options.host ?? '0.0.0.0';
    const api = await startControlPlaneApi({ store, ca, verifier: options.verifier ?? NO_VERIFIER, cluster, region: options.region, host, log });
    stops.push(() => api.stop());
    const multicluster = await startMulticluster({
      store,
      cluster,
      trustDomain: options.trustDomain,
      identity: api.identity,
      credentialKey: await linkKey(store),
      listen: { host, port: MESH_API_PORT },
      gatewayAddress: options.gatewayAddress,
      region: options.region,
      sameness: options.sameness ?? false,
      log,
    });
    stops.push(() => multicluster.stop());
    const meshApi = { host: host === '0.0.0.0' ? '127.0.0.1' : host, port: multicluster.meshApiAddress.port };
    const gateway = await startClusterGateway({ cluster, meshApi, listen: options.gatewayListen, ca, multicluster, log });
    stops.push(() => gateway.close());
    // The collector reads the pods from an informer: listing every pod each round would load the API server.
    const pods = new Informer<Pod>({ store, kind: 'Pod', warn: (m) => log.warn(`metrics: ${m}`) });
    await pods.start();
    stops.push(() => pods.stop());
    const metrics = new MetricsCollector({ pods: () => Promise.resolve([...pods.values()]) }).start();
    stops.push(() => metrics.stop());
    // What `strait stat` and `strait service list --context` read; only reads that reveal no secret.
    const admin = await startAdminServer({ host, port: options.adminPort ?? ADMIN_PORT }, { cluster, version: VERSION }, {
      stats: (windowSeconds) => metrics.stats(windowSeconds),
      services: (query) => api.discovery.listServices({ ...query, gatewayAlive: (c) => multicluster.status().links[c]?.gateway.alive }),
      identity: () => {
        const { certChainPem, trustBundlePem } = api.identity.material();
        return { trustDomain: ca.trustDomain, certChainPem, trustBundlePem };
      },
    });
    stops.push(() => void admin.close());
    log.info({ server: store.rest.server.origin, context: store.rest.context }, 'control plane ready on Kubernetes');
    return { store, multicluster, gateway, metrics, discovery: api.discovery, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Refuses to start without Strait's CRDs, naming what to do, rather than retrying 404s for ever. */
async function requireCustomResources(store: Store): Promise<void> {
  const missing: string[] = [];
  for (const def of CUSTOM_KINDS) {
    try {
      await store.list(def.kind, { namespace: MULTICLUSTER_NAMESPACE });
    } catch (err) {
      if ((err as Error).name !== 'NotFoundError') throw err;
      missing.push(`${def.plural}.${def.group}`);
    }
  }
  if (missing.length > 0) throw new Error(`the cluster lacks Strait's CRDs (${missing.join(', ')}); install them with strait install`);
}

/** The link credential key, from its Secret in strait-system; made there on first start. */
async function linkKey(store: Store): Promise<Buffer> {
  const ref = { kind: 'Secret', namespace: MULTICLUSTER_NAMESPACE, name: LINK_KEY_SECRET };
  const existing = (await store.get(ref)) as { data?: { key?: string } } | undefined;
  if (existing?.data?.key) return Buffer.from(existing.data.key, 'base64');
  if (!(await store.get({ kind: 'Namespace', name: MULTICLUSTER_NAMESPACE }))) {
    await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: MULTICLUSTER_NAMESPACE } }]);
  }
  const key = randomBytes(32);
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: LINK_KEY_SECRET, namespace: MULTICLUSTER_NAMESPACE }, type: 'Opaque', data: { key: key.toString('base64') } };
  await store.apply([secret]);
  return key;
}
