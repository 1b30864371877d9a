// One service across clusters, as a cluster sees it: the members of `<namespace>/<name>` (its own
// Service when it takes part, and every linked cluster's member slices), the ServiceImport they make
// and the conflicts among their definitions. KEP-1645's rules: the oldest definition wins (then the
// cluster name, so every cluster picks the same), a clusterset service's ports are the union of its
// members' (a port whose name or number is taken by an older member is left out), a global
// service's are the winner's, and any member whose ports or type differ from the winner's is a
// conflict, reported with the names of the clusters involved.
import { GLOBAL_ANNOTATIONS, isGlobalService } from '../../api/global.js';
import { isHeadless, type Service, type ServiceExport, type ServiceImport, type ServiceImportPort } from '../../api/kinds.js';
import type { EndpointSlice } from '../../api/kinds/endpointslice.js';
import { MANAGED_BY_LABEL, MANAGED_BY_STRAIT, MCS_API_VERSION } from '../../api/kinds/mcs.js';
import { isMirror, MIRROR_ANNOTATIONS, MIRROR_LABELS, parseRemoteServiceSpec, type RemoteServiceSpec } from '../../api/kinds/strait.js';
import { exportedPorts } from '../mesh-api/exports.js';

/** One cluster's definition of the service. */
export interface Member extends RemoteServiceSpec {
  cluster: string;
}

export type ConflictReason = 'PortConflict' | 'TypeConflict' | 'TypeConflict,PortConflict';

export interface Conflict {
  reason: ConflictReason;
  message: string;
}

/** What the members make of the service. */
export interface Resolution {
  /** The oldest definition. */
  winner: Member;
  /** Any member is global: the service's cluster-local name is one service too. */
  global: boolean;
  type: 'ClusterSetIP' | 'Headless';
  ports: ServiceImportPort[];
  /** Every member's cluster, sorted. */
  clusters: string[];
  conflict?: Conflict;
}

/** The definitions carried by the member slices of one service, one per cluster (the first readable slice's). */
export function remoteMembers(slices: Iterable<EndpointSlice>): Member[] {
  const byCluster = new Map<string, Member>();
  for (const slice of slices) {
    const cluster = slice.metadata.labels?.[MIRROR_LABELS.remoteCluster];
    if (cluster === undefined || byCluster.has(cluster)) continue;
    const spec = parseRemoteServiceSpec(slice.metadata.annotations?.[MIRROR_ANNOTATIONS.remoteServiceSpec]);
    if (spec) byCluster.set(cluster, { ...spec, cluster });
  }
  return [...byCluster.values()];
}

/**
 * This cluster's own Service as a member, or undefined when it takes no part: it does when it is
 * global, when a ServiceExport names it, or when a linked cluster's global member exists (the
 * Service merges their slices by name, as Kubernetes merges slices).
 */
export function localMember(cluster: string, service: Service | undefined, serviceExport: ServiceExport | undefined, remote: readonly Member[]): Member | undefined {
  if (!service || isMirror(service)) return undefined;
  const global = isGlobalService(service) || remote.some((m) => m.global);
  if (!global && !serviceExport) return undefined;
  const created = (global || !serviceExport ? service.metadata.creationTimestamp : serviceExport.metadata.creationTimestamp) ?? '';
  return {
    cluster,
    ports: exportedPorts(service).map((p) => ({ name: p.name, port: p.port, appProtocol: p.appProtocol })),
    headless: service.spec ? isHeadless(service.spec) : false,
    created,
    global,
    serviceExport: serviceExport !== undefined,
  };
}

/** Oldest first; a definition without a time counts as the newest; then by cluster name. */
export function byAge(a: Member, b: Member): number {
  const ta = Date.parse(a.created);
  const tb = Date.parse(b.created);
  const ka = Number.isNaN(ta) ? Infinity : ta;
  const kb = Number.isNaN(tb) ? Infinity : tb;
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0;
}

const portText = (p: RemoteServiceSpec['ports'][number]) => `${p.name ? `${p.name}:` : ''}${p.port}${p.appProtocol ? `/${p.appProtocol}` : ''}`;
const portsSignature = (m: Member) => m.ports.map(portText).sort().join(',');

/** The ServiceImport the members make, and their conflicts; undefined without members. */
export function resolve(service: string, members: readonly Member[]): Resolution | undefined {
  if (members.length === 0) return undefined;
  const sorted = [...members].sort(byAge);
  const winner = sorted[0]!;
  const global = members.some((m) => m.global);
  const ports = global ? winner.ports.map(importPort) : unionOfPorts(sorted);
  const typeLosers = sorted.filter((m) => m.headless !== winner.headless);
  const portLosers = sorted.filter((m) => portsSignature(m) !== portsSignature(winner));
  const resolution: Resolution = {
    winner,
    global,
    type: winner.headless ? 'Headless' : 'ClusterSetIP',
    ports,
    clusters: members.map((m) => m.cluster).sort(),
  };
  if (typeLosers.length === 0 && portLosers.length === 0) return resolution;
  const reason: ConflictReason = typeLosers.length > 0 && portLosers.length > 0 ? 'TypeConflict,PortConflict' : typeLosers.length > 0 ? 'TypeConflict' : 'PortConflict';
  const describe = (m: Member) => `${m.cluster} (${m.headless ? 'headless, ' : ''}ports ${m.ports.map(portText).join(', ') || 'none'})`;
  const involved = [winner, ...sorted.filter((m) => typeLosers.includes(m) || portLosers.includes(m))];
  const what = [...(typeLosers.length > 0 ? ['headless or not'] : []), ...(portLosers.length > 0 ? ['ports'] : [])].join(' and ');
  const message =
    `clusters ${involved.map((m) => m.cluster).join(', ')} define service ${service} differently (${what}): ${involved.map(describe).join('; ')}; ` +
    `the oldest definition, ${winner.cluster}'s${winner.created ? ` (${winner.created})` : ''}, wins`;
  return { ...resolution, conflict: { reason, message } };
}

function importPort(p: RemoteServiceSpec['ports'][number]): ServiceImportPort {
  return { ...(p.name ? { name: p.name } : {}), protocol: 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}), port: p.port };
}

/** Every member's ports, oldest first: a port whose name or number an older member has is left out. */
function unionOfPorts(sorted: readonly Member[]): ServiceImportPort[] {
  const names = new Set<string>();
  const numbers = new Set<number>();
  const out: ServiceImportPort[] = [];
  for (const member of sorted) {
    for (const p of member.ports) {
      if (names.has(p.name) || numbers.has(p.port)) continue;
      names.add(p.name);
      numbers.add(p.port);
      out.push(importPort(p));
    }
  }
  return out;
}

/** The ServiceImport of a resolved service, as the clusterset controller writes it (status apart: see importStatus). */
export function serviceImportFor(namespace: string, name: string, resolution: Resolution): ServiceImport {
  return {
    apiVersion: MCS_API_VERSION,
    kind: 'ServiceImport',
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_STRAIT },
      ...(resolution.global ? { annotations: { [GLOBAL_ANNOTATIONS[1]]: 'true' } } : {}),
    },
    spec: { type: resolution.type, ports: resolution.ports },
  };
}
