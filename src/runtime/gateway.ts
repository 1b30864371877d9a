// The cluster's gateway in the local runtime: the SNI router (src/gateway) on the cluster's listen
// address (settings.ts), run by the control-plane process, with routes to every endpoint of an
// exported service, to the mesh API, and to its own probe. It can be stopped and started on its own
// (a dead gateway, as `strait gateway stop` simulates, is what linked clusters must survive).
import type { Logger } from 'pino';
import { PROXY_PORTS } from '../api/mesh.js';
import type { Multicluster } from '../control/links/multicluster.js';
import { localCertifier, type CertificateAuthority } from '../identity/ca.js';
import { WorkloadIdentity } from '../identity/client.js';
import { meshApiRouteKey, probeRouteKey } from '../api/route-keys.js';
import { startGateway, type Gateway, type GatewayStats } from '../gateway/router.js';
import { StaticRouteTable } from '../gateway/routes.js';
import type { ListenAddress } from './settings.js';

/** The identity the gateway presents to probes. */
const GATEWAY_WORKLOAD = { namespace: 'strait-system', serviceAccount: 'gateway' };

export interface ClusterGateway {
  /** Where it listens, `host:port`. */
  readonly address: string;
  /** Undefined while stopped. */
  stats(): GatewayStats | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startClusterGateway(options: {
  cluster: string;
  /** Where the gateway hands mesh API connections (the control plane's mesh API listener). */
  meshApi: { host: string; port: number };
  listen: ListenAddress;
  ca: CertificateAuthority;
  multicluster: Multicluster;
  log: Logger;
}): Promise<ClusterGateway> {
  const { cluster, log } = options;
  const { host, port } = options.listen;
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const identity = new WorkloadIdentity({ certifier: localCertifier(options.ca, GATEWAY_WORKLOAD) });
  await identity.start();

  const routes = new StaticRouteTable([
    [probeRouteKey(cluster), { kind: 'probe' }],
    [meshApiRouteKey(cluster), { kind: 'mesh-api', ...options.meshApi }],
  ]);
  let endpointKeys = new Set<string>();
  const unfollow = options.multicluster.followExports((exports) => {
    const next = new Set<string>();
    for (const service of exports.values()) {
      for (const endpoint of service.endpoints) {
        if (!endpoint.sni) continue;
        next.add(endpoint.sni);
        routes.set(endpoint.sni, { kind: 'endpoint', host: endpoint.address, port: PROXY_PORTS.inbound });
      }
    }
    for (const key of endpointKeys) if (!next.has(key)) routes.delete(key);
    endpointKeys = next;
  });

  const gatewayLog = log.child({ component: 'gateway' });
  let running: Gateway | undefined;
  const start = async () => {
    running ??= await startGateway({ cluster, identity, routes, host, port, log: gatewayLog });
    gatewayLog.info({ advertised: address }, 'gateway advertised to linked clusters');
  };
  const stop = async () => {
    const g = running;
    running = undefined;
    await g?.close();
    if (g) gatewayLog.info('gateway stopped');
  };
  await start();
  return {
    address,
    stats: () => running?.stats(),
    start,
    stop,
    async close() {
      unfollow();
      await stop();
      identity.stop();
    },
  };
}
