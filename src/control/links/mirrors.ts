// What the link controller writes for one exported service of another cluster: a mirror Service
// `<svc>-<cluster>` in the same namespace (no selector, the remote ports) and EndpointSlices holding
// the remote endpoints, each reached through the remote gateway by its SNI route key and verified
// by its workload identity; for a headless service, also one mirror per instance (`web-0-cluster1`),
// as Linkerd's service mirror makes them. A member of one service across clusters (global) gets
// EndpointSlices labelled with the service's own name, so the local Service of that name merges
// them as Kubernetes merges slices; a clusterset member (ServiceExport) gets slices only the
// clusterset name reads. Everything sent by the remote is checked: what does not make sense is left
// out and said why, never written.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { ExportedEndpoint, ExportedService, ServicePort as ExportedPort } from '../../api/gen/strait/mesh/v1/mesh_pb.js';
import { MCS_SERVICE_NAME_LABEL, REGION_LABEL } from '../../api/global.js';
import type { Service, ServicePort } from '../../api/kinds.js';
import { SLICE_MANAGED_BY_LABEL, SLICE_SERVICE_LABEL, type EndpointSlice, type SliceEndpoint } from '../../api/kinds/endpointslice.js';
import { EXPORT_LABELS, isMirror, LINK_CONTROLLER_NAME, MIRROR_ANNOTATIONS, MIRROR_LABELS, type RemoteEndpointIdentity, type RemoteServiceSpec } from '../../api/kinds/strait.js';
import { dns1035LabelError, dns1123LabelError } from '../../api/names.js';
import type { Resource } from '../../api/types.js';
import { parseRouteKey } from '../../api/route-keys.js';
import { parseSpiffeId } from '../../identity/spiffe.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../discovery/names.js';

export interface MirrorOptions {
  /** The cluster the services come from (the Link's target). */
  cluster: string;
  /** `host:port` of its gateway, as reachable from here. */
  gateway: string;
  /** False while the gateway is down: every endpoint is written not ready (and kept). */
  gatewayAlive: boolean;
  /** This mesh's trust domain: every remote identity must be in it. */
  trustDomain: string;
  clusterDomain?: string;
  /** The remote cluster's region, labelled on member slices; absent or '' when it has none. */
  region?: string;
}

export interface Mirrors {
  /** Services first, then their EndpointSlices. */
  objects: Resource[];
  /** What was left out, and why. */
  problems: string[];
}

/** `<service>-<cluster>`, as Linkerd names a mirror. */
export function mirrorName(service: string, cluster: string): string {
  return `${service}-${cluster}`;
}

/** Why a remote service cannot be mirrored at all, or undefined when it can. */
export function exportProblem(exported: ExportedService, cluster: string): string | undefined {
  const what = `service ${exported.namespace}/${exported.name} of cluster ${cluster}`;
  if (isMirror({ apiVersion: 'v1', kind: 'Service', metadata: { name: exported.name, labels: exported.labels } })) {
    const origin = exported.labels[MIRROR_LABELS.clusterName];
    return `${what} is itself a mirror${origin ? ` (of cluster ${origin})` : ''}; a mirror is never mirrored again`;
  }
  const namespaceError = dns1123LabelError(exported.namespace);
  if (namespaceError) return `${what}: namespace ${namespaceError}`;
  const nameError = dns1035LabelError(exported.name);
  if (nameError) return `${what}: name ${nameError}`;
  return undefined;
}

/** Why a remote service cannot have a mirror (its name with the cluster's is too long), or undefined. */
export function mirrorProblem(exported: ExportedService, cluster: string): string | undefined {
  const name = mirrorName(exported.name, cluster);
  const error = dns1035LabelError(name);
  return error && `service ${exported.namespace}/${exported.name} of cluster ${cluster}: its mirror name "${name}" ${error}`;
}

/** Why a remote endpoint cannot be used, or undefined when it can. */
function endpointProblem(endpoint: ExportedEndpoint, options: MirrorOptions): string | undefined {
  if (isIP(endpoint.address) === 0) return `address ${JSON.stringify(endpoint.address)} is not an IP address`;
  const identity = parseSpiffeId(endpoint.identity);
  if (!identity || identity.trustDomain !== options.trustDomain) return `identity ${JSON.stringify(endpoint.identity)} is not a workload of trust domain ${options.trustDomain}`;
  const key = parseRouteKey(endpoint.sni);
  if (key?.kind !== 'endpoint' || key.cluster !== options.cluster) return `SNI ${JSON.stringify(endpoint.sni)} is not an endpoint route key of cluster ${options.cluster}`;
  if (endpoint.hostname !== '' && dns1123LabelError(endpoint.hostname)) return `hostname ${JSON.stringify(endpoint.hostname)} is not a DNS-1123 label`;
  if (endpoint.ports.some((p) => p.port < 1 || p.port > 65535)) return 'a port is not between 1 and 65535';
  return undefined;
}

/** The ports and endpoints of a remote service that make sense; `problems` says what was left out. */
function usable(exported: ExportedService, options: MirrorOptions, problems: string[]): { ports: ExportedPort[]; endpoints: ExportedEndpoint[] } {
  const ports = exported.ports.filter((p) => {
    const ok = p.port >= 1 && p.port <= 65535 && (p.name === '' || dns1123LabelError(p.name) === undefined);
    if (!ok) problems.push(`service ${exported.namespace}/${exported.name}: port ${JSON.stringify(p.name)} ${p.port} is not a valid service port`);
    return ok;
  });
  const endpoints = exported.endpoints.filter((e) => {
    const problem = endpointProblem(e, options);
    if (problem) problems.push(`service ${exported.namespace}/${exported.name}: endpoint ${e.pod || e.address}: ${problem}`);
    return problem === undefined;
  });
  return { ports, endpoints };
}

/** The mirrors of one remote service; `exportProblem` and `mirrorProblem` must have passed. */
export function mirrorObjects(exported: ExportedService, options: MirrorOptions): Mirrors {
  const problems: string[] = [];
  const { ports, endpoints } = usable(exported, options, problems);
  const name = mirrorName(exported.name, options.cluster);
  const objects: Resource[] = [mirrorService(exported, name, ports, exported.headless, {}, options)];
  const slices: Resource[] = slicesFor(exported, name, endpoints, ports, options);
  if (exported.headless) {
    for (const endpoint of endpoints) {
      if (endpoint.hostname === '') continue;
      const instance = mirrorName(endpoint.hostname, options.cluster);
      if (dns1035LabelError(instance)) {
        problems.push(`service ${exported.namespace}/${exported.name}: instance mirror "${instance}" ${dns1035LabelError(instance)}`);
        continue;
      }
      objects.push(mirrorService(exported, instance, ports, false, { [MIRROR_LABELS.headlessMirror]: name }, options));
      slices.push(...slicesFor(exported, instance, [endpoint], ports, options));
    }
  }
  return { objects: [...objects, ...slices], problems };
}

/** How a member's slices are named after the service and the cluster: `<svc>-<cluster>-global-<hash>`. */
export type MemberKind = 'global' | 'import';

/**
 * The EndpointSlices that make a remote service a member of one service across clusters (`global`:
 * labelled with the service's name, so the local Service of that name merges them) or of a
 * clusterset service only (`import`: the clusterset label alone). A member with no endpoints still
 * has one (empty) slice, so that its definition is known here. `exportProblem` must have passed.
 */
export function memberSlices(exported: ExportedService, kind: MemberKind, options: MirrorOptions): Mirrors {
  const problems: string[] = [];
  const { ports, endpoints } = usable(exported, options, problems);
  const spec: RemoteServiceSpec = {
    ports: ports.map((p) => ({ name: p.name, port: p.port, appProtocol: p.appProtocol })),
    headless: exported.headless,
    created: exported.created,
    global: exported.global,
    serviceExport: exported.serviceExport,
  };
  const labels: Record<string, string> = {
    ...(kind === 'global' ? { [SLICE_SERVICE_LABEL]: exported.name } : {}),
    [MCS_SERVICE_NAME_LABEL]: exported.name,
    ...(options.region ? { [REGION_LABEL]: options.region } : {}),
  };
  const prefix = `${mirrorName(exported.name, options.cluster)}-${kind}`;
  const slices = buildSlices(exported, prefix, labels, { [MIRROR_ANNOTATIONS.remoteServiceSpec]: JSON.stringify(spec) }, endpoints, ports, options);
  if (slices.length === 0) slices.push(...buildSlices(exported, prefix, labels, { [MIRROR_ANNOTATIONS.remoteServiceSpec]: JSON.stringify(spec) }, [], ports, options, true));
  return { objects: slices, problems };
}

function mirrorService(exported: ExportedService, name: string, ports: ExportedPort[], headless: boolean, extraLabels: Record<string, string>, options: MirrorOptions): Service {
  // The remote labels come along (as Linkerd copies them), but never an export label: a mirror is not exported.
  const labels = Object.fromEntries(
    Object.entries(exported.labels).filter(([key]) => !(EXPORT_LABELS as readonly string[]).includes(key) && !(Object.values(MIRROR_LABELS) as string[]).includes(key)),
  );
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: exported.namespace,
      labels: { ...labels, ...extraLabels, [MIRROR_LABELS.mirroredService]: 'true', [MIRROR_LABELS.clusterName]: options.cluster },
      annotations: remoteAnnotations(exported, options),
    },
    spec: {
      type: 'ClusterIP',
      ...(headless ? { clusterIP: 'None' } : {}),
      ports: ports.map(
        (p): ServicePort => ({ ...(p.name ? { name: p.name } : {}), protocol: 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}), port: p.port, targetPort: p.port }),
      ),
    },
  };
}

function remoteAnnotations(exported: ExportedService, options: MirrorOptions): Record<string, string> {
  return {
    [MIRROR_ANNOTATIONS.remoteService]: `${exported.name}.${exported.namespace}.svc.${options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN}`,
    [MIRROR_ANNOTATIONS.remoteRef]: `${exported.namespace}/${exported.name}`,
  };
}

/**
 * The slices of a mirror: one per distinct set of endpoint ports (pods of one service usually
 * agree), named after the mirror and a digest of the ports so the name stays the same as the
 * endpoints change.
 */
function slicesFor(exported: ExportedService, mirror: string, endpoints: ExportedEndpoint[], ports: ExportedPort[], options: MirrorOptions): EndpointSlice[] {
  return buildSlices(exported, mirror, { [SLICE_SERVICE_LABEL]: mirror }, {}, endpoints, ports, options);
}

/**
 * Slices named `<prefix>-<hash>` with `labels` and `annotations` beside the link controller's own;
 * `empty` makes the one slice of a member without endpoints.
 */
function buildSlices(
  exported: ExportedService,
  prefix: string,
  labels: Record<string, string>,
  annotations: Record<string, string>,
  endpoints: ExportedEndpoint[],
  ports: ExportedPort[],
  options: MirrorOptions,
  empty = false,
): EndpointSlice[] {
  const groups = new Map<string, ExportedEndpoint[]>();
  if (empty) groups.set(JSON.stringify([]), []);
  for (const endpoint of endpoints) {
    // Only the ports the mirror has; an endpoint that serves none of them is of no use.
    const served = endpoint.ports.filter((ep) => ports.some((p) => p.name === ep.name));
    if (served.length === 0) continue;
    // A slice holds one address family, as Kubernetes' do.
    const signature = JSON.stringify([isIP(endpoint.address), served.map((p) => [p.name, p.port]).sort()]);
    let group = groups.get(signature);
    if (!group) groups.set(signature, (group = []));
    group.push(endpoint);
  }
  return [...groups].map(([signature, members]) => {
    const identities: Record<string, RemoteEndpointIdentity> = {};
    for (const e of [...members].sort((a, b) => a.address.localeCompare(b.address))) identities[e.address] = { identity: e.identity, sni: e.sni };
    const slicePorts = (members[0]?.ports ?? []).filter((ep) => ports.some((p) => p.name === ep.name)).map((ep) => {
      const appProtocol = ports.find((p) => p.name === ep.name)!.appProtocol;
      return { ...(ep.name ? { name: ep.name } : {}), port: ep.port, protocol: 'TCP' as const, ...(appProtocol ? { appProtocol } : {}) };
    });
    const sliceEndpoints: SliceEndpoint[] = members.map((e) => ({
      addresses: [e.address],
      conditions: { ready: e.ready && options.gatewayAlive },
      ...(e.hostname ? { hostname: e.hostname } : {}),
      targetRef: { kind: 'Pod', name: e.pod, namespace: exported.namespace },
    }));
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${prefix}-${createHash('sha256').update(signature).digest('hex').slice(0, 8)}`,
        namespace: exported.namespace,
        labels: {
          ...labels,
          [SLICE_MANAGED_BY_LABEL]: LINK_CONTROLLER_NAME,
          [MIRROR_LABELS.remoteCluster]: options.cluster,
          [MIRROR_LABELS.clusterName]: options.cluster,
        },
        annotations: {
          ...remoteAnnotations(exported, options),
          [MIRROR_ANNOTATIONS.gateway]: options.gateway,
          [MIRROR_ANNOTATIONS.endpointIdentities]: JSON.stringify(identities),
          ...annotations,
        },
      },
      addressType: members[0] && isIP(members[0].address) === 6 ? 'IPv6' : 'IPv4',
      endpoints: sliceEndpoints,
      ports: slicePorts,
    };
  });
}
