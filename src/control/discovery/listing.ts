// What `strait service list` shows (as Cilium's `service list --clustermesh-affinity`): every
// service a caller in this cluster can name, by frontend name and port, with every backend endpoint
// (ready or not), the cluster it is in, its state, its tier, and whether it is preferred now. Computed
// from discovery's cache by the same rules as the answers proxies get.
import type { Endpoint } from '../../api/gen/strait/discovery/v1/discovery_pb.js';
import { AFFINITY_ANNOTATION, FAILOVER_ANNOTATION, isGlobalService } from '../../api/global.js';
import type { Service, ServiceImport } from '../../api/kinds.js';
import { isMirror } from '../../api/kinds/strait.js';
import type { ResourceCache } from './cache.js';
import { importedService, memberEndpoints, ownEndpoints, preferenceOf, serviceNamed, tcpPorts, type ClusterContext, type Collect } from './compute.js';
import { serviceFqdn, targetFqdn } from './names.js';

/** `local`: this cluster's own; `mirror`: another cluster's, by its own name; `global`: one service across clusters; `clusterset`: an MCS import. */
export type ListedServiceType = 'local' | 'mirror' | 'global' | 'clusterset';

/** `active` takes traffic; `unready` does not; `gateway down`: not ready because its cluster's gateway does not answer. */
export type BackendState = 'active' | 'unready' | 'gateway down';

export interface ListedBackend {
  cluster: string;
  /** The workload's `address:port` (a remote pod's own address). */
  address: string;
  /** The gateway (`host:port`) a remote endpoint is reached through. */
  via?: string;
  pod?: string;
  state: BackendState;
  /** 0 is most preferred. */
  tier: number;
  /** In the lowest tier that has an active endpoint: where callers send traffic now. */
  preferred: boolean;
}

export interface ListedFrontend {
  /** `<svc>.<ns>.svc.cluster.local:<port>` or `<svc>.<ns>.svc.clusterset.local:<port>`. */
  name: string;
  backends: ListedBackend[];
}

export interface ListedService {
  namespace: string;
  name: string;
  type: ListedServiceType;
  /** The caller-side preference: `failover=a,b`, `affinity=local|remote`, or absent. */
  preference?: string;
  frontends: ListedFrontend[];
}

export interface ServiceListing {
  cluster: string;
  region?: string;
  services: ListedService[];
}

export interface ListOptions {
  /** Only this namespace's services. */
  namespace?: string;
  /** Whether a linked cluster's gateway answers its probes (undefined: not known). */
  gatewayAlive?: (cluster: string) => boolean | undefined;
}

export function listServices(cache: ResourceCache, ctx: ClusterContext, options: ListOptions = {}): ServiceListing {
  const names = new Map<string, { namespace: string; name: string }>();
  const add = (namespace: string | undefined, name: string) => {
    if (namespace === undefined || (options.namespace !== undefined && namespace !== options.namespace)) return;
    names.set(`${namespace}/${name}`, { namespace, name });
  };
  for (const service of cache.allServices()) add(service.metadata.namespace, service.metadata.name);
  for (const imported of cache.allServiceImports()) add(imported.metadata.namespace, imported.metadata.name);
  const services = [...names.values()]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .map(({ namespace, name }) => listService(cache, ctx, namespace, name, options));
  return { cluster: ctx.cluster, ...(ctx.region ? { region: ctx.region } : {}), services };
}

function listService(cache: ResourceCache, ctx: ClusterContext, namespace: string, name: string, options: ListOptions): ListedService {
  const local = cache.service(namespace, name);
  const imported = cache.serviceImport(namespace, name);
  const frontends: ListedFrontend[] = [];
  const prefer = preferenceOf(local, ctx);
  const named = serviceNamed(cache, namespace, name);
  if (named) {
    const fqdn = serviceFqdn(namespace, name, ctx.clusterDomain);
    for (const port of tcpPorts(named)) {
      frontends.push(frontend(`${fqdn}:${port.port}`, (how) => ownEndpoints(cache, namespace, name, port, ctx, how), prefer, ctx, options));
    }
  }
  if (imported) {
    const fqdn = targetFqdn({ namespace, service: name, clusterset: true });
    for (const port of tcpPorts(importedService(imported, local))) {
      frontends.push(frontend(`${fqdn}:${port.port}`, (how) => memberEndpoints(cache, imported, port, ctx, how), prefer, ctx, options));
    }
  }
  const preference = preferenceText(local);
  return { namespace, name, type: typeOf(local, imported), ...(preference ? { preference } : {}), frontends };
}

function frontend(
  name: string,
  gather: (how: Collect) => Map<string, Endpoint>,
  prefer: Collect['prefer'],
  ctx: ClusterContext,
  options: ListOptions,
): ListedFrontend {
  const unready = new Set<Endpoint>();
  const endpoints = [...gather({ prefer, unready }).values()];
  const tierInUse = Math.min(...endpoints.filter((e) => !unready.has(e)).map((e) => e.priority));
  const backends = endpoints
    .map((e): ListedBackend => {
      const via = e.proxy?.sni ? `${e.proxy.host}:${e.proxy.port}` : undefined;
      const state: BackendState = !unready.has(e) ? 'active' : via && e.cluster !== ctx.cluster && options.gatewayAlive?.(e.cluster) === false ? 'gateway down' : 'unready';
      return {
        cluster: e.cluster,
        address: `${e.address}:${e.port}`,
        ...(via ? { via } : {}),
        ...(e.pod ? { pod: e.pod } : {}),
        state,
        tier: e.priority,
        preferred: state === 'active' && e.priority === tierInUse,
      };
    })
    .sort((a, b) => a.tier - b.tier || a.cluster.localeCompare(b.cluster) || a.address.localeCompare(b.address, undefined, { numeric: true }));
  return { name, backends };
}

function typeOf(local: Service | undefined, imported: ServiceImport | undefined): ListedServiceType {
  if (local && isMirror(local)) return 'mirror';
  if ((local && isGlobalService(local)) || (imported && isGlobalService(imported))) return 'global';
  return imported ? 'clusterset' : 'local';
}

function preferenceText(local: Service | undefined): string | undefined {
  const annotations = local?.metadata.annotations ?? {};
  if (annotations[FAILOVER_ANNOTATION] !== undefined) return `failover=${annotations[FAILOVER_ANNOTATION]}`;
  const affinity = annotations[AFFINITY_ANNOTATION];
  return affinity && affinity !== 'none' ? `affinity=${affinity}` : undefined;
}
