// What a cluster exports to a linked cluster: the Services an export rule selects (never a mirror,
// never an object of the link controller), each with its ports and its meshed pods as endpoints —
// address, ports, identity and the SNI route key that makes this cluster's gateway splice a
// connection to the pod's proxy — and how the caller is to take it: as a mirror (export label or
// the credential's selector), as a member of one service across clusters (global, or every
// service under namespace sameness), or as a member of a clusterset service (ServiceExport).
// Kept current from the store's cache: a change recomputes only the exports it can affect.
import { create } from '@bufbuild/protobuf';
import { ExportedEndpointSchema, ExportedServiceSchema, ServicePortSchema, type ExportedEndpoint, type ExportedService, type ServicePort as ExportedPort } from '../../api/gen/strait/mesh/v1/mesh_pb.js';
import type { ConditionUpdate } from '../../api/conditions.js';
import { EXPORT_TO_ANNOTATION, isGlobalService, isSharedService, parseNameList, SERVICE_CONDITIONS } from '../../api/global.js';
import { isHeadless, type Pod, type Service, type ServiceExport } from '../../api/kinds.js';
import { isExported, isMirror, MULTICLUSTER_NAMESPACE } from '../../api/kinds/strait.js';
import { endpointRouteKey } from '../../api/route-keys.js';
import type { LabelSelector } from '../../api/types.js';
import type { CacheChange, ClusterObjects } from '../discovery/cache.js';
import { isMeshed } from '../../api/mesh.js';
import { isPodReady, podIdentity, resolveTargetPort, revisionOf, selectsPod, tcpPorts } from '../discovery/compute.js';
import { portProtocol } from '../discovery/protocol.js';

/** Namespaces whose services namespace sameness never shares: the mesh's own and Kubernetes'. */
export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set([MULTICLUSTER_NAMESPACE, 'kube-system']);

/** What one caller may see, from its credential and its watch request. */
export interface ExportRule {
  /** The credential's selector: the services mirrored as `<name>-<cluster>`; absent, those with an export label. */
  selector?: LabelSelector;
  /** The caller merges every service of the same name and namespace (namespace sameness). */
  sameness: boolean;
  /**
   * The caller's cluster, which `strait.dev/export-to` must name. Absent: what any linked cluster
   * may be sent (the gateway's view), so a service whose export-to names anyone counts.
   */
  consumer?: string;
}

/** How a caller is to take one service; undefined when the rule sends it nothing. */
export interface ExportFlags {
  mirror: boolean;
  global: boolean;
  serviceExport: boolean;
  /** RFC 3339: the Service's creation, or the ServiceExport's for a clusterset-only member. */
  created: string;
}

/** The clusters `strait.dev/export-to` lets see a Service: every one when absent, none when the list is malformed. */
export function exportTargets(service: Service): { names: string[] } | 'all' | { problem: string } {
  const text = service.metadata.annotations?.[EXPORT_TO_ANNOTATION];
  if (text === undefined) return 'all';
  return parseNameList(text);
}

/**
 * The warning a Service's `strait.dev/export-to` deserves, or undefined when every cluster it names
 * is one this cluster has minted a link credential for (`linked`).
 */
export function exportToCondition(service: Service, linked: ReadonlySet<string>, cluster: string): ConditionUpdate | undefined {
  const targets = exportTargets(service);
  if (targets === 'all') return undefined;
  const type = SERVICE_CONDITIONS.exportTo;
  if ('problem' in targets) return { type, status: 'False', reason: 'InvalidValue', message: `${EXPORT_TO_ANNOTATION}: ${targets.problem}; the service is exported to no cluster` };
  const unknown = targets.names.filter((name) => !linked.has(name));
  if (unknown.length === 0) return undefined;
  const list = unknown.join(', ');
  return {
    type,
    status: 'False',
    reason: 'UnknownCluster',
    message: `${EXPORT_TO_ANNOTATION} names ${unknown.length === 1 ? 'cluster' : 'clusters'} ${list}, which ${unknown.length === 1 ? 'has' : 'have'} no link to ${cluster}: nothing is exported there (strait link --from ${cluster} --to ${unknown[0]} makes one)`,
  };
}

/** What `rule` sends of `service` (whose ServiceExport, if any, is `serviceExport`). */
export function exportFlags(service: Service, serviceExport: ServiceExport | undefined, rule: ExportRule): ExportFlags | undefined {
  if (isMirror(service)) return undefined;
  const targets = exportTargets(service);
  if (targets !== 'all' && ('problem' in targets || (rule.consumer === undefined ? targets.names.length === 0 : !targets.names.includes(rule.consumer)))) return undefined;
  const namespace = service.metadata.namespace ?? '';
  const shared = isSharedService(service);
  const mirror = isExported(service, rule.selector);
  const global = shared && (isGlobalService(service) || (rule.sameness && !SYSTEM_NAMESPACES.has(namespace)));
  const exportedBySe = serviceExport !== undefined;
  if (!mirror && !global && !exportedBySe) return undefined;
  const created = (global || !exportedBySe ? service.metadata.creationTimestamp : serviceExport.metadata.creationTimestamp) ?? '';
  return { mirror, global, serviceExport: exportedBySe, created };
}

/** A Service's ports as another cluster sees them (TCP only, the protocol spoken as appProtocol). */
export function exportedPorts(service: Service): ExportedPort[] {
  const annotations = service.metadata.annotations;
  return tcpPorts(service).map((p) =>
    create(ServicePortSchema, {
      name: p.name ?? '',
      port: p.port,
      protocol: 'TCP',
      appProtocol: p.appProtocol ?? (portProtocol(p, annotations) === 'tcp' ? 'tcp' : ''),
    }),
  );
}

/** The cluster objects exports are computed from. */
export type ExportObjects = ClusterObjects & { allServices(): Iterable<Service> };

export interface ExportContext {
  cluster: string;
  trustDomain: string;
}

export function exportKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** A service as another cluster sees it; `pods` are its namespace's pods (or at least those it may select). */
export function exportedService(service: Service, pods: Iterable<Pod>, ctx: ExportContext, flags: ExportFlags): ExportedService {
  const namespace = service.metadata.namespace!;
  const endpoints: ExportedEndpoint[] = [];
  for (const pod of pods) {
    if (!selectsPod(service, pod)) continue;
    const endpoint = exportedEndpoint(pod, service, ctx);
    if (endpoint) endpoints.push(endpoint);
  }
  endpoints.sort((a, b) => a.pod.localeCompare(b.pod));
  const exported = create(ExportedServiceSchema, {
    namespace,
    name: service.metadata.name,
    ports: exportedPorts(service),
    headless: service.spec ? isHeadless(service.spec) : false,
    endpoints,
    labels: service.metadata.labels ?? {},
    ...flags,
  });
  exported.revision = revisionOf([
    exported.ports.map((p) => [p.name, p.port, p.appProtocol]),
    exported.headless,
    exported.endpoints.map((e) => [e.address, e.ports.map((p) => [p.name, p.port]), e.pod, e.hostname, e.identity, e.sni, e.ready]),
    Object.entries(exported.labels).sort(),
    [flags.mirror, flags.global, flags.serviceExport, flags.created],
  ]);
  return exported;
}

/**
 * A pod as an endpoint of an exported service. Only a meshed pod with an address can be reached
 * through the gateway (which splices to its proxy); others are left out.
 */
function exportedEndpoint(pod: Pod, service: Service, ctx: ExportContext): ExportedEndpoint | undefined {
  const address = pod.status?.podIP;
  if (!address || !isMeshed(pod)) return undefined;
  const identity = podIdentity(pod, ctx.trustDomain);
  if (identity === undefined) return undefined;
  let sni: string;
  try {
    sni = endpointRouteKey(ctx.cluster, pod.metadata.namespace!, pod.metadata.name);
  } catch {
    // A pod whose name cannot be a route key cannot be reached through the gateway.
    return undefined;
  }
  const ports = tcpPorts(service).flatMap((p) => {
    const port = resolveTargetPort(pod, p.targetPort ?? p.port);
    return port === undefined ? [] : [{ name: p.name ?? '', port }];
  });
  // Kubernetes gives a pod a DNS name of its own under the headless service its `subdomain` names.
  const { hostname, subdomain } = (pod.spec ?? {}) as { hostname?: string; subdomain?: string };
  return create(ExportedEndpointSchema, {
    address,
    ports,
    pod: pod.metadata.name,
    hostname: hostname !== undefined && subdomain === service.metadata.name ? hostname : '',
    identity,
    sni,
    ready: isPodReady(pod),
  });
}

/**
 * The pods of a namespace by label (`key=value` → pods), so a service finds the pods it selects
 * without matching every pod of its namespace: 10,000 services of 10,000 pods cost 10,000
 * lookups, not 100 million matches.
 */
class PodsByLabel {
  private readonly byNamespace = new Map<string, Map<string, Map<string, Pod>>>();

  constructor(private readonly objects: ClusterObjects) {}

  /** Pods that may be selected by `selector` (each still to be matched). */
  candidates(namespace: string, selector: Record<string, string>): Iterable<Pod> {
    const index = this.namespace(namespace);
    let smallest: Map<string, Pod> | undefined;
    for (const [key, value] of Object.entries(selector)) {
      const pods = index.get(`${key}=${value}`);
      if (!pods) return [];
      if (!smallest || pods.size < smallest.size) smallest = pods;
    }
    return smallest?.values() ?? [];
  }

  /** Follows a pod change, in a namespace already indexed. */
  update(namespace: string, previous: Pod | undefined, current: Pod | undefined): void {
    const index = this.byNamespace.get(namespace);
    if (!index) return;
    if (previous) this.put(index, previous, false);
    if (current) this.put(index, current, true);
  }

  clear(): void {
    this.byNamespace.clear();
  }

  private namespace(namespace: string): Map<string, Map<string, Pod>> {
    let index = this.byNamespace.get(namespace);
    if (!index) {
      this.byNamespace.set(namespace, (index = new Map<string, Map<string, Pod>>()));
      for (const pod of this.objects.pods(namespace)) this.put(index, pod, true);
    }
    return index;
  }

  private put(index: Map<string, Map<string, Pod>>, pod: Pod, present: boolean): void {
    for (const [key, value] of Object.entries(pod.metadata.labels ?? {})) {
      const label = `${key}=${value}`;
      let pods = index.get(label);
      if (present) {
        if (!pods) index.set(label, (pods = new Map<string, Pod>()));
        pods.set(pod.metadata.name, pod);
      } else if (pods?.delete(pod.metadata.name) && pods.size === 0) {
        index.delete(label);
      }
    }
  }
}

/** The exports one rule selects, kept current; listeners hear of every change. */
export class ExportIndex {
  private readonly exports = new Map<string, ExportedService>();
  /** Namespace → names of its exported services, so a pod change looks only at its namespace. */
  private readonly byNamespace = new Map<string, Set<string>>();
  private readonly listeners = new Set<() => void>();
  private readonly pods: PodsByLabel;

  constructor(
    private readonly objects: ExportObjects,
    private readonly rule: ExportRule,
    private readonly ctx: ExportContext,
  ) {
    this.pods = new PodsByLabel(objects);
    this.rebuild();
  }

  /** The exported services by `namespace/name`. Never changed in place: a change replaces the entry. */
  get current(): ReadonlyMap<string, ExportedService> {
    return this.exports;
  }

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Recomputes everything (after the cache was listed again). */
  rebuild(): void {
    this.pods.clear();
    const seen = new Set<string>();
    let changed = false;
    for (const service of this.objects.allServices()) {
      const key = exportKey(service.metadata.namespace!, service.metadata.name);
      seen.add(key);
      changed = this.refresh(service.metadata.namespace!, service.metadata.name) || changed;
    }
    for (const key of [...this.exports.keys()]) {
      if (seen.has(key)) continue;
      const [namespace, name] = key.split('/') as [string, string];
      changed = this.refresh(namespace, name) || changed;
    }
    if (changed) this.notify();
  }

  onChange(change: CacheChange): void {
    let changed = false;
    if (change.kind === 'Service' || change.kind === 'ServiceExport') {
      changed = this.refresh(change.namespace, change.name);
    } else if (change.kind === 'Pod') {
      this.pods.update(change.namespace, change.previous as Pod | undefined, change.current as Pod | undefined);
      const pods = [change.previous, change.current].filter((p): p is Pod => p !== undefined);
      for (const name of [...(this.byNamespace.get(change.namespace) ?? [])]) {
        const service = this.objects.service(change.namespace, name);
        if (service && pods.some((pod) => selectsPod(service, pod))) changed = this.refresh(change.namespace, name) || changed;
      }
    }
    if (changed) this.notify();
  }

  /** Recomputes one service's export; true when it changed. */
  private refresh(namespace: string, name: string): boolean {
    const key = exportKey(namespace, name);
    const service = this.objects.service(namespace, name);
    const before = this.exports.get(key);
    const flags = service && exportFlags(service, this.objects.serviceExport(namespace, name), this.rule);
    if (!service || !flags) {
      if (!before) return false;
      this.exports.delete(key);
      const names = this.byNamespace.get(namespace);
      if (names?.delete(name) && names.size === 0) this.byNamespace.delete(namespace);
      return true;
    }
    const selector = service.spec?.selector;
    const pods = selector && Object.keys(selector).length > 0 ? this.pods.candidates(namespace, selector) : [];
    const next = exportedService(service, pods, this.ctx, flags);
    if (before?.revision === next.revision) return false;
    this.exports.set(key, next);
    let names = this.byNamespace.get(namespace);
    if (!names) this.byNamespace.set(namespace, (names = new Set()));
    names.add(name);
    return true;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}
