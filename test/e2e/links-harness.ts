// In-process clusters for the link tests: each with a real store, its control plane's certificate
// from one mesh PKI, its mesh API on its own TLS port and a real SNI gateway in front of it (mesh
// API and probe routes), so every link call crosses TLS and the gateway as it does between machines.
import { pino } from 'pino';
import type { Resource } from '../../src/api/types.js';
import { linkResources } from '../../src/cli/link.js';
import { generateTokenKey } from '../../src/identity/credentials.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import type { Issuer } from '../../src/identity/pki.js';
import type { TlsIdentity } from '../../src/identity/tls.js';
import { startMulticluster, type Multicluster } from '../../src/control/links/multicluster.js';
import { meshApiRouteKey, probeRouteKey } from '../../src/api/route-keys.js';
import { startGateway, type Gateway } from '../../src/gateway/router.js';
import { StaticRouteTable } from '../../src/gateway/routes.js';
import { LocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/store.js';
import { issueMaterial, meshPki, staticIdentity } from '../unit/identity/fixtures.js';
import { PROXY_CONTAINER } from '../../src/api/mesh.js';

export const TRUST_DOMAIN = 'cluster.local';
export const quiet = pino({ level: 'silent' });

export interface TestCluster {
  name: string;
  store: LocalStore;
  /** The control plane's certificate. */
  identity: TlsIdentity;
  multicluster: Multicluster;
  gateway: Gateway;
  routes: StaticRouteTable;
  /** `host:port` of the gateway. */
  gatewayAddress: string;
  /** Stops the gateway only (as a dead gateway process would). */
  killGateway(): Promise<void>;
  /** Starts the gateway again on the same port. */
  restartGateway(): Promise<void>;
  close(): Promise<void>;
}

/** A cluster's mesh settings: its region, and the mesh's namespace sameness. */
export interface ClusterSettings {
  region?: string;
  sameness?: boolean;
}

/** Clusters sharing one trust anchor, each with its own issuer. */
export async function startClusters(names: string[], options: { issuers?: Record<string, Issuer> } & ClusterSettings = {}): Promise<TestCluster[]> {
  const issuers = options.issuers ?? (await meshPki(names, TRUST_DOMAIN)).issuers;
  return Promise.all(names.map((name) => startCluster(name, issuers[name]!, LocalStore.memory(), options)));
}

export async function startCluster(name: string, issuer: Issuer, store = LocalStore.memory(), settings: ClusterSettings = {}): Promise<TestCluster> {
  const ca = new CertificateAuthority({ issuer, trustDomain: TRUST_DOMAIN });
  const identity = staticIdentity(await issueMaterial(ca, { namespace: 'strait-system', serviceAccount: 'control-plane' }));
  const gatewayIdentity = staticIdentity(await issueMaterial(ca, { namespace: 'strait-system', serviceAccount: 'gateway' }));
  await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }]);
  const routes = new StaticRouteTable([[probeRouteKey(name), { kind: 'probe' }]]);
  let gateway = await startGateway({ cluster: name, identity: gatewayIdentity, routes, host: '127.0.0.1', port: 0, log: quiet });
  const port = gateway.address.port;
  const gatewayAddress = `127.0.0.1:${port}`;
  const multicluster = await startMulticluster({
    store,
    cluster: name,
    trustDomain: TRUST_DOMAIN,
    identity,
    credentialKey: generateTokenKey(),
    listen: { host: '127.0.0.1', port: 0 },
    gatewayAddress,
    region: settings.region,
    sameness: settings.sameness ?? false,
    log: quiet,
  });
  routes.set(meshApiRouteKey(name), { kind: 'mesh-api', host: '127.0.0.1', port: multicluster.meshApiAddress.port });
  let gatewayUp = true;
  return {
    name,
    store,
    identity,
    multicluster,
    get gateway() {
      return gateway;
    },
    routes,
    gatewayAddress,
    async killGateway() {
      gatewayUp = false;
      await gateway.close();
    },
    async restartGateway() {
      gateway = await startGateway({ cluster: name, identity: gatewayIdentity, routes, host: '127.0.0.1', port, log: quiet });
      gatewayUp = true;
    },
    async close() {
      await multicluster.stop();
      if (gatewayUp) await gateway.close();
      await store.close();
    },
  };
}

/** What `strait link --from target --to consumer` does, in process: mint in the target, write into the consumer. */
export async function link(target: TestCluster, consumer: TestCluster, options: { gatewayAddress?: string } = {}): Promise<{ token: string; id: string }> {
  const issued = await target.multicluster.admin.mintCredential({ consumer: consumer.name });
  const objects = linkResources(target.multicluster.admin.info(), consumer.multicluster.admin.info(), issued.token, options);
  await consumer.store.apply(objects);
  return issued;
}

/** An exported Service and its meshed, ready pods (as the runtime writes them). */
export async function exportService(
  store: Store,
  name: string,
  options: { namespace?: string; pods?: string[]; ip?: (i: number) => string; labels?: Record<string, string>; headless?: boolean; port?: number; portName?: string } = {},
): Promise<void> {
  const namespace = options.namespace ?? 'sample';
  const port = options.port ?? 5000;
  const portName = options.portName ?? 'http';
  const service: Resource = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: options.labels ?? { 'mirror.linkerd.io/exported': 'true' } },
    spec: { type: 'ClusterIP', ...(options.headless ? { clusterIP: 'None' } : {}), selector: { app: name }, ports: [{ name: portName, port, targetPort: portName, protocol: 'TCP' }] },
  };
  await store.apply([service]);
  const pods = options.pods ?? [`${name}-0`];
  for (const [i, pod] of pods.entries()) await addMeshedPod(store, pod, { namespace, app: name, ip: options.ip?.(i) ?? `127.0.${i + 1}.${(name.length % 200) + 1}`, port, portName, hostname: options.headless ? pod : undefined, subdomain: options.headless ? name : undefined });
}

export async function addMeshedPod(
  store: Store,
  name: string,
  options: { namespace: string; app: string; ip: string; port: number; portName?: string; ready?: boolean; hostname?: string; subdomain?: string },
): Promise<void> {
  const pod: Resource = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: options.namespace, labels: { app: options.app } },
    spec: {
      containers: [
        { name: 'app', image: 'docker.io/istio/examples-helloworld-v1', ports: [{ name: options.portName ?? 'http', containerPort: options.port, protocol: 'TCP' }] },
        { name: PROXY_CONTAINER, image: 'strait/proxy' },
      ],
      ...(options.hostname ? { hostname: options.hostname, subdomain: options.subdomain } : {}),
    },
  };
  await store.apply([pod]);
  const ready = options.ready ?? true;
  await store.updateStatus(
    { kind: 'Pod', namespace: options.namespace, name },
    { phase: 'Running', podIP: options.ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }], containerStatuses: [{ name: 'app', image: 'x', ready, restartCount: 0 }] },
  );
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
