// What discovery answers, computed from the cluster's objects: the destination a service name stands
// for (ports, backends, ready endpoints, each endpoint's tier of preference) and a pod's inbound
// configuration. A cluster-local name is the local Service, merged with the members of a global
// service (their slices carry its name); a clusterset name is the ServiceImport.
import { isMeshed, LOAD_BALANCER_ANNOTATION, PROXY_CONTAINER, PROXY_PORTS } from '../../api/mesh.js';
import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import {
  BackendSchema,
  DestinationInfoSchema,
  EndpointSchema,
  InboundResponseSchema,
  LoadBalancer,
  PortSchema,
  Protocol,
  type Backend,
  type DestinationInfo,
  type Endpoint,
  type InboundResponse,
  type Port,
} from '../../api/gen/strait/discovery/v1/discovery_pb.js';
import { affinityOf, FAILOVER_ANNOTATION, isGlobalService, parseNameList, REGION_LABEL } from '../../api/global.js';
import type { Pod, Service, ServiceImport, ServicePort, TrafficSplit } from '../../api/kinds.js';
import { isSliceEndpointReady, type EndpointSlice } from '../../api/kinds/endpointslice.js';
import { MIRROR_ANNOTATIONS, MIRROR_LABELS, parseEndpointIdentities, parseHostPort } from '../../api/kinds/strait.js';
import { matchesSelector } from '../../api/labels.js';
import { spiffeId } from '../../identity/spiffe.js';
import type { ClusterObjects } from './cache.js';
import { parseServiceName, serviceFqdn, targetFqdn, type ServiceTarget } from './names.js';
import { portProtocol } from './protocol.js';

/** The cluster discovery answers for. */
export interface ClusterContext {
  cluster: string;
  trustDomain: string;
  clusterDomain: string;
  /** This cluster's region (mesh.json), which a failover preference may name instead of the cluster. */
  region?: string;
}

/** One answer for a name: the destination's own fields and every ready endpoint, by backend. */
export interface DestinationState {
  info: DestinationInfo;
  /** Backend service (fully qualified) → endpoint key (`endpointKey`) → endpoint. */
  endpoints: Map<string, Map<string, Endpoint>>;
  /** The services (`namespace/name`) whose changes may change this answer: the root and every backend. */
  services: string[];
}

export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** How an endpoint is named within a backend: its address and port. */
export function endpointKey(address: string, port: number): string {
  return `${address}|${port}`;
}

/** A short digest of a value's JSON: equal content, equal revision, on any control plane. */
export function revisionOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 16);
}

export function computeDestination(objects: ClusterObjects, target: ServiceTarget, ctx: ClusterContext): DestinationState {
  if (target.clusterset) return computeClusterset(objects, target, ctx);
  const services = [serviceKey(target.namespace, target.service)];
  const service = serviceNamed(objects, target.namespace, target.service);
  const servicePort = service && addressedPort(service, target.port);
  if (!service || servicePort === undefined) return notFound(services);

  const how: Collect = { prefer: preferenceOf(objects.service(target.namespace, target.service), ctx) };
  const backends: Backend[] = [];
  const endpoints = new Map<string, Map<string, Endpoint>>();
  for (const { name, weight } of backendsOf(objects, service)) {
    const fqdn = serviceFqdn(target.namespace, name, ctx.clusterDomain);
    const known = backends.find((b) => b.service === fqdn);
    // A TrafficSplit that names a service twice gives it both shares.
    if (known) {
      known.weight += weight;
      continue;
    }
    const backendService = name === target.service ? service : serviceNamed(objects, target.namespace, name);
    backends.push(create(BackendSchema, { service: fqdn, namespace: target.namespace, weight, exists: backendService !== undefined }));
    if (name !== target.service) services.push(serviceKey(target.namespace, name));
    const port = backendService && backendPort(backendService, servicePort);
    endpoints.set(fqdn, port === undefined ? new Map<string, Endpoint>() : ownEndpoints(objects, target.namespace, name, port, ctx, how));
  }
  const info = destinationInfo(service, serviceFqdn(target.namespace, target.service, ctx.clusterDomain), backends);
  return { info, endpoints, services };
}

/**
 * `<svc>.<ns>.svc.clusterset.local`: the ServiceImport's ports and its members' endpoints;
 * `<hostname>.<cluster>.…` the one endpoint of that hostname in that cluster.
 */
function computeClusterset(objects: ClusterObjects, target: ServiceTarget, ctx: ClusterContext): DestinationState {
  const { namespace, service: name, instance } = target;
  const services = [serviceKey(namespace, name)];
  const imported = objects.serviceImport(namespace, name);
  const local = objects.service(namespace, name);
  const service = imported && importedService(imported, local);
  const servicePort = service && addressedPort(service, target.port);
  if (!imported || !service || servicePort === undefined) return notFound(services);
  // One endpoint has no tiers to choose between.
  const how: Collect = { prefer: instance ? () => 0 : preferenceOf(local, ctx), ...(instance ? { instance } : {}) };
  const fqdn = targetFqdn(target, ctx.clusterDomain);
  const backend = create(BackendSchema, { service: fqdn, namespace, weight: 1, exists: true });
  const endpoints = new Map([[fqdn, memberEndpoints(objects, imported, servicePort, ctx, how)]]);
  return { info: destinationInfo(service, fqdn, [backend]), endpoints, services };
}

function notFound(services: string[]): DestinationState {
  return { info: withRevision({ exists: false }), endpoints: new Map(), services };
}

function destinationInfo(service: Service, fqdn: string, backends: Backend[]): DestinationInfo {
  return withRevision({
    exists: true,
    service: fqdn,
    namespace: service.metadata.namespace!,
    ports: servicePorts(service),
    loadBalancer: service.metadata.annotations?.[LOAD_BALANCER_ANNOTATION] === 'round-robin' ? LoadBalancer.ROUND_ROBIN : LoadBalancer.EWMA,
    backends,
  });
}

/** How endpoints are gathered for one answer. */
export interface Collect {
  /** Gives each endpoint its tier. */
  prefer: Preference;
  /** Only the endpoint of this hostname in this cluster (a per-endpoint clusterset name). */
  instance?: { hostname: string; cluster: string };
  /** When given, endpoints that are not ready are gathered too, and added here (for listings, never for proxies). */
  unready?: Set<Endpoint>;
}

/**
 * The endpoints of a service's port under its cluster-local name: its selected pods, and the
 * endpoints of the EndpointSlices labelled as its own (a mirror's remote endpoints, a global
 * service's members in other clusters).
 */
export function ownEndpoints(objects: ClusterObjects, namespace: string, name: string, port: ServicePort, ctx: ClusterContext, how: Collect): Map<string, Endpoint> {
  const found = new Map<string, Endpoint>();
  const local = objects.service(namespace, name);
  if (local) addAll(found, podEndpoints(objects, local, port, ctx, how));
  for (const slice of objects.endpointSlices(namespace, name)) addAll(found, sliceEndpoints(slice, port, ctx, how));
  return found;
}

/**
 * The endpoints of a clusterset service's port: the slices labelled with its clusterset name (the
 * members in other clusters), and this cluster's own pods when its Service takes part.
 */
export function memberEndpoints(objects: ClusterObjects, imported: ServiceImport, port: ServicePort, ctx: ClusterContext, how: Collect): Map<string, Endpoint> {
  const { namespace, name } = imported.metadata;
  const found = new Map<string, Endpoint>();
  const local = objects.service(namespace!, name);
  if (local && takesPart(objects, imported, local, ctx) && (!how.instance || how.instance.cluster === ctx.cluster)) {
    addAll(found, podEndpoints(objects, local, port, ctx, how));
  }
  for (const slice of objects.clustersetSlices(namespace!, name)) {
    if (how.instance && sliceCluster(slice, ctx) !== how.instance.cluster) continue;
    addAll(found, sliceEndpoints(slice, port, ctx, how));
  }
  return found;
}

function addAll(into: Map<string, Endpoint>, endpoints: Iterable<Endpoint>): void {
  for (const endpoint of endpoints) into.set(endpointKey(endpoint.address, endpoint.port), endpoint);
}

/**
 * The Service a cluster-local name stands for. With a global ServiceImport of that name its ports
 * and type are the ServiceImport's (the oldest definition in the clusterset wins), and the name
 * resolves even without a Service here; otherwise it is the Service itself.
 */
export function serviceNamed(objects: ClusterObjects, namespace: string, name: string): Service | undefined {
  const local = objects.service(namespace, name);
  const imported = objects.serviceImport(namespace, name);
  return imported && isGlobalService(imported) ? importedService(imported, local) : local;
}

/** A ServiceImport as the Service its callers see: its ports and type, with the local Service's annotations (protocols, balancing). */
export function importedService(imported: ServiceImport, local: Service | undefined): Service {
  const { name, namespace } = imported.metadata;
  const annotations = local?.metadata.annotations;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec: {
      type: 'ClusterIP',
      ...(imported.spec?.type === 'Headless' ? { clusterIP: 'None' } : {}),
      ports: (imported.spec?.ports ?? []).map((p) => ({ ...p, targetPort: p.port })),
    },
  };
}

/** True when this cluster's own Service is a member of the clusterset service (exported, global, or listed by the ServiceImport). */
function takesPart(objects: ClusterObjects, imported: ServiceImport, local: Service, ctx: ClusterContext): boolean {
  const { namespace, name } = local.metadata;
  return objects.serviceExport(namespace!, name) !== undefined || isGlobalService(local) || (imported.status?.clusters ?? []).some((c) => c.cluster === ctx.cluster);
}

/** An endpoint's tier (0 is most preferred), by the cluster and region it is in. */
export type Preference = (cluster: string, region: string | undefined) => number;

/**
 * The tiers a caller-side Service asks for. `strait.dev/failover: "a,b"`: the index of the first
 * entry naming the endpoint's cluster or region, and everything not named after all of them; else
 * `service.cilium.io/affinity`: `local` prefers this cluster's endpoints, `remote` the others',
 * `none` (or no annotation, or no Service) puts all in one tier.
 */
export function preferenceOf(service: Service | undefined, ctx: ClusterContext): Preference {
  const failover = service?.metadata.annotations?.[FAILOVER_ANNOTATION];
  const parsed = failover === undefined ? undefined : parseNameList(failover);
  if (parsed && 'names' in parsed) {
    const { names } = parsed;
    return (cluster, region) => {
      const tier = names.findIndex((n) => n === cluster || n === region);
      return tier === -1 ? names.length : tier;
    };
  }
  const affinity = service ? affinityOf(service) : 'none';
  if (affinity === 'local') return (cluster) => (cluster === ctx.cluster ? 0 : 1);
  if (affinity === 'remote') return (cluster) => (cluster === ctx.cluster ? 1 : 0);
  return () => 0;
}

function withRevision(init: Partial<Omit<DestinationInfo, '$typeName' | 'revision'>>): DestinationInfo {
  const info = create(DestinationInfoSchema, init);
  info.revision = revisionOf([info.exists, info.service, info.namespace, info.ports.map(portTuple), info.loadBalancer, info.backends.map(backendTuple)]);
  return info;
}

const portTuple = (p: Port) => [p.name, p.port, p.protocol];
const backendTuple = (b: Backend) => [b.service, b.namespace, b.weight, b.exists];

/**
 * The service port a name addresses: the one it names; without a port, the service's port 80 if it
 * has one (as HTTP implies), else its first. A port the service does not have addresses nothing; a
 * headless service without ports passes any port through to its pods, as its DNS name does.
 */
function addressedPort(service: Service, port: number | undefined): AddressedPort | undefined {
  const ports = tcpPorts(service);
  if (ports.length === 0 && port !== undefined && service.spec?.clusterIP === 'None') return { port, targetPort: port, protocol: 'TCP', passThrough: true };
  if (port === undefined) return ports.find((p) => p.port === 80) ?? ports[0];
  return ports.find((p) => p.port === port);
}

/** A service port, or the port a name carries to a headless service without ports (every endpoint takes it as is). */
type AddressedPort = ServicePort & { passThrough?: true };

/** A backend serves the split service's port by the same number, else by the same name. */
function backendPort(backend: Service, port: AddressedPort): AddressedPort | undefined {
  const ports = tcpPorts(backend);
  if (ports.length === 0 && backend.spec?.clusterIP === 'None') return port;
  return ports.find((p) => p.port === port.port) ?? (port.name === undefined ? undefined : ports.find((p) => p.name === port.name));
}

/** The ports a proxy can carry: TCP (UDP and SCTP ports are not served). */
export function tcpPorts(service: Service): ServicePort[] {
  return (service.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
}

function servicePorts(service: Service): Port[] {
  const annotations = service.metadata.annotations;
  return tcpPorts(service).map((p) => create(PortSchema, { name: p.name ?? '', port: p.port, protocol: toProtocol(portProtocol(p, annotations)) }));
}

const toProtocol = (p: 'http' | 'tcp'): Protocol => (p === 'http' ? Protocol.HTTP : Protocol.TCP);

/**
 * Where a service's traffic goes: the backends of the TrafficSplit whose root it is (any SMI
 * version; the oldest split wins when several name it, as the first one applied would), else the
 * service itself with weight 1.
 */
function backendsOf(objects: ClusterObjects, service: Service): { name: string; weight: number }[] {
  const namespace = service.metadata.namespace!;
  const split = [...objects.splits(namespace)]
    .filter((s) => splitRoot(s) === service.metadata.name)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name))[0];
  if (!split) return [{ name: service.metadata.name, weight: 1 }];
  return (split.spec?.backends ?? []).map((b) => ({ name: serviceNameIn(b.service, namespace), weight: b.weight }));
}

/** The name of the service a TrafficSplit splits (its spec.service may be written in any service-name form). */
export function splitRoot(split: TrafficSplit): string | undefined {
  const service = split.spec?.service;
  return service === undefined ? undefined : serviceNameIn(service, split.metadata.namespace!);
}

/** A split's service reference as a name in its namespace (SMI backends live beside the split). */
function serviceNameIn(reference: string, namespace: string): string {
  const parsed = parseServiceName(reference, namespace);
  return 'target' in parsed && parsed.target.namespace === namespace ? parsed.target.service : reference;
}

/**
 * The endpoints a Service's selected pods give a port (matched to the Service's own port by number,
 * else by name): those that are ready and have an address.
 */
function podEndpoints(objects: ClusterObjects, service: Service, port: ServicePort, ctx: ClusterContext, how: Collect): Endpoint[] {
  const selector = service.spec?.selector;
  const own = backendPort(service, port);
  // As in Kubernetes, a service without a selector gets no endpoints from pods.
  if (!selector || Object.keys(selector).length === 0 || own === undefined) return [];
  const endpoints: Endpoint[] = [];
  for (const pod of objects.selectedPods(service.metadata.namespace!, selector)) {
    if (how.instance && podHostname(pod) !== how.instance.hostname) continue;
    const ready = isPodReady(pod);
    if (!ready && !how.unready) continue;
    const endpoint = podEndpoint(pod, own, ctx, how.prefer);
    if (!endpoint) continue;
    if (!ready) how.unready!.add(endpoint);
    endpoints.push(endpoint);
  }
  return endpoints;
}

/** The hostname a pod answers to in per-endpoint names (a StatefulSet's pods have their own name). */
function podHostname(pod: Pod): string | undefined {
  return (pod.spec as { hostname?: string } | undefined)?.hostname;
}

/** The cluster a slice's endpoints live in: the remote one it was written for, else this one. */
export function sliceCluster(slice: EndpointSlice, ctx: Pick<ClusterContext, 'cluster'>): string {
  return slice.metadata.labels?.[MIRROR_LABELS.remoteCluster] ?? ctx.cluster;
}

/**
 * The ready endpoints of a slice for a service port (the slice port of the same name, as Kubernetes
 * matches them). With a gateway annotation each endpoint is another cluster's workload, reached
 * through that gateway by its SNI route key and verified by its identity; one without an identity
 * is left out rather than reached unverified. Without one, an endpoint with an identity is reached
 * at its own proxy, and one without in plaintext.
 */
function sliceEndpoints(slice: EndpointSlice, port: AddressedPort, ctx: ClusterContext, how: Collect): Endpoint[] {
  const slicePort = port.passThrough ? port : (slice.ports ?? []).find((p) => (p.name ?? '') === (port.name ?? ''));
  if (slicePort?.port === undefined || (slicePort.protocol ?? 'TCP') !== 'TCP') return [];
  const annotations = slice.metadata.annotations ?? {};
  const gatewayText = annotations[MIRROR_ANNOTATIONS.gateway];
  const gateway = gatewayText === undefined ? undefined : parseHostPort(gatewayText);
  if (gatewayText !== undefined && !gateway) return [];
  const identities = parseEndpointIdentities(annotations[MIRROR_ANNOTATIONS.endpointIdentities]) ?? {};
  const cluster = sliceCluster(slice, ctx);
  const priority = how.prefer(cluster, cluster === ctx.cluster ? ctx.region : slice.metadata.labels?.[REGION_LABEL]);
  const endpoints: Endpoint[] = [];
  for (const sliceEndpoint of slice.endpoints ?? []) {
    const ready = isSliceEndpointReady(sliceEndpoint);
    if (!ready && !how.unready) continue;
    if (how.instance && sliceEndpoint.hostname !== how.instance.hostname) continue;
    for (const address of sliceEndpoint.addresses) {
      const remote = identities[address];
      if (gateway && !remote) continue;
      const proxy = gateway ? { host: gateway.host, port: gateway.port, sni: remote!.sni } : remote ? { host: address, port: PROXY_PORTS.inbound } : undefined;
      const endpoint = withEndpointRevision(
        create(EndpointSchema, { address, port: slicePort.port, identity: remote?.identity ?? '', proxy, cluster, pod: sliceEndpoint.targetRef?.name ?? '', priority }),
      );
      if (!ready) how.unready!.add(endpoint);
      endpoints.push(endpoint);
    }
  }
  return endpoints;
}

/** True when the service selects the pod (the pod may not be ready). */
export function selectsPod(service: Service, pod: Pod): boolean {
  const selector = service.spec?.selector;
  return selector !== undefined && Object.keys(selector).length > 0 && matchesSelector(pod.metadata.labels, { matchLabels: selector });
}

/** Running, every container ready (the Ready condition), and an address. */
export function isPodReady(pod: Pod): boolean {
  const status = pod.status;
  if (!status?.podIP || status.phase !== 'Running') return false;
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  if (ready) return ready.status === 'True';
  const containers = status.containerStatuses ?? [];
  return containers.length > 0 && containers.every((c) => c.ready);
}

/** The SPIFFE ID a pod's proxy presents; undefined for a service account name no certificate can carry. */
export function podIdentity(pod: Pod, trustDomain: string): string | undefined {
  try {
    return spiffeId(trustDomain, { namespace: pod.metadata.namespace!, serviceAccount: pod.spec?.serviceAccountName ?? 'default' });
  } catch {
    return undefined;
  }
}

/** A pod (with an address; the caller checks readiness) as an endpoint of a port. */
function podEndpoint(pod: Pod, port: ServicePort, ctx: ClusterContext, prefer: Preference): Endpoint | undefined {
  if (!pod.status?.podIP) return undefined;
  const targetPort = resolveTargetPort(pod, port.targetPort ?? port.port);
  if (targetPort === undefined) return undefined;
  const address = pod.status.podIP;
  const identity = isMeshed(pod) ? podIdentity(pod, ctx.trustDomain) : undefined;
  // A meshed pod whose identity cannot be named cannot be reached safely: no endpoint rather than plaintext.
  if (isMeshed(pod) && identity === undefined) return undefined;
  return withEndpointRevision(
    create(EndpointSchema, {
      address,
      port: targetPort,
      identity: identity ?? '',
      proxy: identity === undefined ? undefined : { host: address, port: PROXY_PORTS.inbound },
      cluster: ctx.cluster,
      pod: pod.metadata.name,
      priority: prefer(ctx.cluster, ctx.region),
    }),
  );
}

function withEndpointRevision(endpoint: Endpoint): Endpoint {
  endpoint.revision = revisionOf([endpoint.identity, endpoint.proxy?.host, endpoint.proxy?.port, endpoint.proxy?.sni, endpoint.cluster, endpoint.pod, endpoint.priority]);
  return endpoint;
}

/** A targetPort by number, or by the name of one of the app's container ports (Kubernetes skips pods without it). */
export function resolveTargetPort(pod: Pod, targetPort: number | string): number | undefined {
  if (typeof targetPort === 'number') return targetPort;
  for (const container of appContainers(pod)) {
    const found = container.ports?.find((p) => p.name === targetPort);
    if (found) return found.containerPort;
  }
  return undefined;
}

function appContainers(pod: Pod) {
  return (pod.spec?.containers ?? []).filter((c) => c.name !== PROXY_CONTAINER);
}

/**
 * A pod's inbound configuration: its app's TCP container ports, each with the protocol a service
 * selecting the pod declares for it (the first such service port, by service name), else the one
 * its own port name implies. Undefined when the pod does not exist; `version` is left for the caller.
 */
export function computeInbound(objects: ClusterObjects, namespace: string, podName: string, ctx: ClusterContext): InboundResponse | undefined {
  const pod = objects.pod(namespace, podName);
  if (!pod) return undefined;
  const selecting = [...objects.services(namespace)].filter((s) => selectsPod(s, pod)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const ports: Port[] = [];
  for (const container of appContainers(pod)) {
    for (const cp of container.ports ?? []) {
      if ((cp.protocol ?? 'TCP') !== 'TCP' || ports.some((p) => p.port === cp.containerPort)) continue;
      const declared = selecting
        .flatMap((s) => tcpPorts(s).map((p) => ({ service: s, port: p })))
        .find(({ port }) => resolveTargetPort(pod, port.targetPort ?? port.port) === cp.containerPort);
      const protocol = declared
        ? portProtocol(declared.port, declared.service.metadata.annotations)
        : portProtocol({ name: cp.name, port: cp.containerPort }, undefined);
      ports.push(create(PortSchema, { name: cp.name ?? '', port: cp.containerPort, protocol: toProtocol(protocol) }));
    }
  }
  return create(InboundResponseSchema, { pod: podName, namespace, cluster: ctx.cluster, ports });
}
