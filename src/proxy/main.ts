// The proxy process beside each meshed pod: gets its workload certificate from the cluster's CA,
// subscribes to discovery, and serves the outbound (4140), inbound (4143) and admin (4191) ports
// on the pod's address, plus the explicit outbound TCP listeners the pod asks for.
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { caTransport, connectCertifier, WorkloadIdentity } from '../identity/client.js';
import type { TlsIdentity } from '../identity/tls.js';
import { startAdmin } from './admin.js';
import { DEFAULT_PORTS, type ProxyConfig } from './config.js';
import { MeshConnector } from './outbound/endpoint/connector.js';
import type { Resolver } from './destinations.js';
import { DiscoveryClient, type InboundWatch } from './discovery-client.js';
import { InboundProxy } from './inbound/server/tls.js';
import { ProxyMetrics } from './metrics.js';
import { RouteTable } from './outbound/logical/table.js';
import { OutboundProxy } from './outbound/proxy.js';

export interface ProxyDependencies {
  /** The workload certificate; by default one the cluster's CA issues for the bootstrap token, renewed before expiry. */
  identity?: TlsIdentity;
  /** Where names are resolved; by default the control plane's Discovery service. */
  resolver?: Resolver;
  log?: Logger;
  /** Request headers must arrive within this (slow and idle clients are cut off); 10 s by default. */
  headersTimeoutMs?: number;
  /** How long a request waits for discovery's first answer about a new name; 5 s by default. */
  resolveTimeoutMs?: number;
}

export interface RunningProxy {
  /** The ports actually bound (a configured 0 picks a free one). */
  ports: { outbound: number; inbound: number; admin: number; tcp: number[] };
  metrics: ProxyMetrics;
  /** What `/config` shows. */
  config(): unknown;
  /** Stops listening, closes every connection and stream, and stops renewing the certificate. */
  close(): Promise<void>;
}

function hasCertificate(identity: TlsIdentity): boolean {
  try {
    identity.material();
    return true;
  } catch {
    return false;
  }
}

function defaultIdentity(config: ProxyConfig): WorkloadIdentity {
  let trustBundlePem: string;
  try {
    trustBundlePem = readFileSync(config.trustAnchorsFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the trust anchors file ${config.trustAnchorsFile} (STRAIT_TRUST_ANCHORS): ${(err as Error).message}`);
  }
  const { host, port } = config.controlPlane;
  const transport = caTransport({ baseUrl: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, trustBundlePem, serverIdentity: config.controlPlaneIdentity });
  return new WorkloadIdentity({ certifier: connectCertifier(transport, () => readFileSync(config.identityTokenFile, 'utf8').trim()) });
}

/**
 * Runs the proxy until close(). Resolves once every listener is up, which waits for the first
 * certificate; the admin port answers from the start (`/ready` says what is missing).
 */
export async function runProxy(config: ProxyConfig, deps: ProxyDependencies = {}): Promise<RunningProxy> {
  const log = deps.log ?? pino({ base: { component: 'proxy', pod: config.pod, namespace: config.namespace, cluster: config.cluster } });
  const workload = deps.identity ? undefined : defaultIdentity(config);
  const identity: TlsIdentity = deps.identity ?? workload!;
  const metrics = new ProxyMetrics(() => workload?.notAfter);
  const proxyName = `${config.pod}.${config.namespace}.${config.cluster}`;
  const ports = { outbound: 0, inbound: 0, admin: 0, tcp: [] as number[] };
  let listening = false;
  let resolver: Resolver | undefined;
  let inboundWatch: InboundWatch | undefined;
  let routes: RouteTable | undefined;
  let connector: MeshConnector | undefined;

  const describeConfig = () => ({
    pod: config.pod,
    namespace: config.namespace,
    cluster: config.cluster,
    podIp: config.podIp,
    ports,
    identity: hasCertificate(identity)
      ? { status: workload?.status() ?? 'ready', spiffeId: identity.material().spiffeId, notAfter: workload?.notAfter?.toISOString() }
      : { status: workload?.status() ?? 'pending' },
    inbound: inboundWatch?.current() ?? null,
    destinations: routes?.snapshot() ?? [],
    sessions: connector?.snapshot() ?? [],
  });
  const admin = await startAdmin({
    host: config.podIp,
    port: config.ports.admin,
    metrics,
    log,
    notReadyReason: () => {
      if (!hasCertificate(identity)) return `waiting for a workload certificate (${workload?.status() ?? 'pending'})`;
      if (!listening) return 'listeners are starting';
      return undefined;
    },
    config: describeConfig,
  });
  ports.admin = admin.port;

  let outbound: OutboundProxy | undefined;
  let inbound: InboundProxy | undefined;
  const close = async () => {
    listening = false;
    await Promise.all([outbound?.close(), inbound?.close()]);
    connector?.close();
    routes?.close();
    inboundWatch?.close();
    if (!deps.resolver) resolver?.close();
    workload?.stop();
    await new Promise((resolve) => admin.server.close(resolve));
    admin.server.closeAllConnections();
  };

  try {
    if (workload) {
      log.info({ controlPlane: config.controlPlane }, 'asking the CA for a workload certificate');
      await workload.start();
      log.info({ spiffeId: workload.material().spiffeId, notAfter: workload.notAfter }, 'workload certificate issued');
    }
    if (deps.resolver) {
      resolver = deps.resolver;
    } else {
      const discovery = new DiscoveryClient({
        controlPlane: config.controlPlane,
        controlPlaneIdentity: config.controlPlaneIdentity,
        identity,
        onEvent: (event) => {
          if (event.type === 'error') log.info({ stream: event.stream, name: event.name, err: event.error.message, retryInMs: event.retryInMs }, 'discovery stream failed');
        },
      });
      inboundWatch = discovery.watchInbound(config.pod, config.namespace);
      resolver = discovery;
    }
    connector = new MeshConnector({ identity, metrics, log, cluster: config.cluster });
    routes = new RouteTable({ resolver, cluster: config.cluster, metrics });
    outbound = new OutboundProxy({
      host: config.podIp,
      port: config.ports.outbound,
      proxyName,
      cluster: config.cluster,
      peerInboundPort: config.ports.inbound || DEFAULT_PORTS.inbound,
      tcpListeners: config.outboundListeners,
      routes,
      connector,
      metrics,
      log,
      headersTimeoutMs: deps.headersTimeoutMs,
      resolveTimeoutMs: deps.resolveTimeoutMs,
    });
    inbound = new InboundProxy({
      host: config.podIp,
      port: config.ports.inbound,
      proxyName,
      cluster: config.cluster,
      identity,
      metrics,
      log,
      reservedPorts: () => [ports.outbound, ports.inbound, ports.admin, ...ports.tcp],
    });
    const out = await outbound.listen();
    ports.outbound = out.port;
    ports.tcp = out.tcp;
    ports.inbound = await inbound.listen();
  } catch (err) {
    await close();
    throw err;
  }
  listening = true;
  log.info({ podIp: config.podIp, ports }, 'proxy ready');
  return { ports, metrics, config: describeConfig, close };
}
