// One cluster's control-plane process in the local runtime: the store, the admin API, and the
// platform parts that Kubernetes would otherwise provide (workload controllers, the pod supervisor).
import { writeFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { toDocuments } from '../api/codec.js';
import type { Pod, PodSpec } from '../api/kinds.js';
import { managedObjectProblem } from '../api/kinds/mcs.js';
import { listen } from '../api/listen.js';
import type { Resource } from '../api/types.js';
import { validateDocuments } from '../api/validate.js';
import { startAdminServer } from '../control/admin.js';
import { startMulticluster } from '../control/links/multicluster.js';
import { MESH_API_PORT } from '../control/mesh-api/server.js';
import { join } from 'node:path';
import { MetricsCollector } from '../control/metrics/collector.js';
import { peerContextValues, registerDiscovery, type DiscoveryService } from '../control/discovery/server.js';
import { injectProxy, wantsProxy, type ProxySettings } from '../control/injector.js';
import { LocalStore } from '../store/local.js';
import type { Store } from '../store/store.js';
import { claimBlock } from './blocks.js';
import { CertificateAuthority } from '../identity/ca.js';
import { BootstrapTokenVerifier, loadOrCreateTokenKey, mintBootstrapToken, type CredentialVerifier } from '../identity/credentials.js';
import { controlPlaneIdentity, createControlPlaneServer, registerIdentityService } from '../control/identity-service.js';
import { clusterAddresses, CONTROL_PLANE_PORT } from './addresses.js';
import { startClusterGateway } from './gateway.js';
import { clusterDir, paths, pickCluster, readMesh, removeIfExists } from './home.js';
import { identityPaths, loadClusterIssuer } from './pki.js';
import { readLog } from './logs.js';
import { advertisedGatewayAddress, gatewayListenAddress } from './settings.js';
import { startPodSupervisor, checkRunnable, podLogPath } from './pods.js';
import { startWorkloadController } from './workloads.js';
import { VERSION } from '../api/version.js';

const DEFAULT_NAMESPACE: Resource = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } };

export async function runControlPlane(home: string, clusterName: string): Promise<void> {
  const log = pino({ base: { cluster: clusterName } });
  const entry = pickCluster(home, clusterName);
  const dir = clusterDir(home, entry.name);
  claimBlock(entry.index, home, entry.name);
  const store = await LocalStore.open(paths.store(home, entry.name));
  if (!(await store.get({ kind: 'Namespace', name: 'default' }))) await store.apply([DEFAULT_NAMESPACE]);

  const { trustDomain } = readMesh(home);
  const ca = new CertificateAuthority({ issuer: await loadClusterIssuer(home, entry.name), trustDomain });
  const tokenKey = loadOrCreateTokenKey(identityPaths.tokenKey(home, entry.name));
  const api = await startControlPlaneApi({
    store,
    ca,
    verifier: new BootstrapTokenVerifier({ key: tokenKey, cluster: entry.name }),
    cluster: entry.name,
    region: entry.region,
    host: clusterAddresses(entry.index).controlPlane,
    log,
  });
  const multicluster = await startMulticluster({
    store,
    cluster: entry.name,
    trustDomain: readMesh(home).trustDomain,
    identity: api.identity,
    credentialKey: loadOrCreateTokenKey(join(identityPaths.dir(home, entry.name), 'link.key')),
    listen: { host: clusterAddresses(entry.index).controlPlane, port: MESH_API_PORT },
    gatewayAddress: advertisedGatewayAddress(entry),
    region: entry.region,
    sameness: readMesh(home).sameness ?? false,
    log,
  });
  const gateway = await startClusterGateway({ cluster: entry.name, meshApi: multicluster.meshApiAddress, listen: gatewayListenAddress(entry), ca: api.ca, multicluster, log });
  const proxySettings: ProxySettings = {
    cluster: entry.name,
    controlPlane: `${clusterAddresses(entry.index).controlPlane}:${CONTROL_PLANE_PORT}`,
    trustDomain: readMesh(home).trustDomain,
    trustAnchorsFile: identityPaths.trustAnchors(home, entry.name),
  };
  const workloads = await startWorkloadController(store, {
    log,
    admitPod: async (pod) => {
      const namespace = await store.get({ kind: 'Namespace', name: pod.metadata.namespace ?? 'default' });
      return wantsProxy(pod, namespace) ? injectProxy(pod, proxySettings) : pod;
    },
  });
  const pods = await startPodSupervisor({
    store,
    cluster: { name: entry.name, index: entry.index, dir },
    log,
    credentials: (pod) =>
      mintBootstrapToken(tokenKey, {
        cluster: entry.name,
        namespace: pod.metadata.namespace ?? 'default',
        serviceAccount: pod.spec?.serviceAccountName ?? 'default',
        pod: pod.metadata.name,
      }),
  });

  const metrics = new MetricsCollector({
    pods: async () => (await store.list('Pod')).items as Pod[],
    onError: (err) => log.warn({ err: err.message }, 'metrics: cannot list pods'),
  }).start();

  let stopping = false;
  const stop = async (stopPods: boolean): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ stopPods }, 'control plane stopping');
    server.close();
    await gateway.close();
    await multicluster.stop();
    metrics.stop();
    api.stop();
    await workloads.stop();
    await pods.stop({ stopPods });
    await store.close();
    removeIfExists(paths.socket(home, entry.name));
    removeIfExists(paths.pid(home, entry.name));
    process.exit(0);
  };

  const server = await startAdminServer(paths.socket(home, entry.name), { cluster: entry.name, version: VERSION }, {
    resources: {
      store,
      admit: (objects) => admit(store, objects),
      logs: async ({ namespace, pod, container }, opts) => {
        const obj = (await store.get({ kind: 'Pod', namespace, name: pod })) as Pod | undefined;
        const name = container ?? obj?.spec?.containers[0]?.name;
        if (!obj || !name) return undefined;
        return readLog(podLogPath(dir, namespace, pod, name), opts);
      },
      shutdown: ({ stopPods }) => void stop(stopPods),
    },
    multicluster: multicluster.admin,
    gateway: {
      status: () => ({ address: gateway.address, running: gateway.stats() !== undefined, stats: gateway.stats() }),
      setRunning: (running) => (running ? gateway.start() : gateway.stop()),
    },
    stats: (windowSeconds) => metrics.stats(windowSeconds),
    services: (query) => api.discovery.listServices({ ...query, gatewayAlive: (cluster) => multicluster.status().links[cluster]?.gateway.alive }),
    identity: () => {
      const { certChainPem, trustBundlePem } = api.identity.material();
      return { trustDomain: api.ca.trustDomain, certChainPem, trustBundlePem };
    },
  });
  writeFileSync(paths.pid(home, entry.name), `${process.pid}\n`);
  // A signal stops the control plane but not the pods: they keep serving (static stability).
  process.on('SIGTERM', () => void stop(false));
  process.on('SIGINT', () => void stop(false));
  log.info({ pid: process.pid, version: VERSION }, 'control plane ready');
}

export interface ControlPlaneApiOptions {
  store: Store;
  ca: CertificateAuthority;
  /** Checks the credential a workload proves itself with (a bootstrap token locally, TokenReview on Kubernetes). */
  verifier: CredentialVerifier;
  cluster: string;
  region?: string;
  /** Where the Connect port listens. */
  host: string;
  log: Logger;
}

/**
 * The control plane's Connect port, under its own certificate: the cluster's CA (signs workload CSRs
 * with the cluster's issuer for whoever the verifier accepts) and discovery (streams to proxies
 * what they need to route). The same on every platform.
 */
export async function startControlPlaneApi(options: ControlPlaneApiOptions) {
  const { store, ca, verifier, log } = options;
  const { trustDomain } = ca;
  const own = controlPlaneIdentity(ca);
  await own.start();
  let discovery: DiscoveryService | undefined;
  const server = createControlPlaneServer(
    own,
    (router) => {
      registerIdentityService(router, {
        ca,
        verifier,
        onEvent: (e) => (e.outcome === 'issued' ? log.info(e, 'certificate issued') : log.warn(e, 'certificate refused')),
      });
      discovery = registerDiscovery(router, { store, cluster: options.cluster, trustDomain, region: options.region, warn: (m) => log.warn(m) });
    },
    { contextValues: peerContextValues },
  );
  await discovery!.ready;
  await listen(server, { port: CONTROL_PLANE_PORT, host: options.host });
  log.info({ address: `${options.host}:${CONTROL_PLANE_PORT}`, trustDomain }, 'identity service ready');
  return {
    ca,
    identity: own,
    discovery: discovery!,
    /** Before the store closes: discovery ends its streams (proxies keep what they know). */
    stop: () => {
      discovery!.close();
      server.close();
      own.stop();
    },
  };
}

/** What this cluster refuses: objects that are invalid, or that it cannot run. */
async function admit(store: LocalStore, objects: Resource[]): Promise<string[]> {
  const validation = await validateDocuments(toDocuments(objects, 'request'));
  if (!validation.ok) return validation.errors.map((e) => e.format());
  const problems: string[] = [];
  const creatingNamespaces = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
  const knownNamespaces = new Set((await store.list('Namespace')).items.map((n) => n.metadata.name));
  for (const o of objects) {
    const ns = o.metadata.namespace;
    const what = `${o.kind} ${ns ? `${ns}/` : ''}${o.metadata.name}`;
    if (ns !== undefined && !knownNamespaces.has(ns) && !creatingNamespaces.has(ns)) {
      problems.push(`${what}: namespace "${ns}" not found; create it first with: strait create namespace ${ns}`);
    }
    const managed = managedObjectProblem(o);
    if (managed) problems.push(managed);
    const podSpec = podSpecOf(o);
    if (podSpec) for (const p of checkRunnable(podSpec)) problems.push(`${what}: ${p}`);
  }
  return problems;
}

function podSpecOf(o: Resource): PodSpec | undefined {
  const spec = o.spec as { template?: { spec?: PodSpec } } | undefined;
  if (o.kind === 'Pod') return o.spec as PodSpec;
  if (o.kind === 'Deployment' || o.kind === 'StatefulSet') return spec?.template?.spec;
  return undefined;
}
