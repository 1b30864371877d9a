// What discovery answers, computed from the cluster's objects: the destination a service name stands
// for (ports, backends, ready endpoints) and a pod's inbound configuration.
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
import type { Pod, Service, ServicePort, TrafficSplit } from '../../api/kinds.js';
import { isSliceEndpointReady, type EndpointSlice } from '../../api/kinds/endpointslice.js';
import { MIRROR_ANNOTATIONS, MIRROR_LABELS, parseEndpointIdentities, parseHostPort } from '../../api/kinds/strait.js';
import { matchesSelector } from '../../api/labels.js';
import { spiffeId } from '../../identity/spiffe.js';
import type { ClusterObjects } from './cache.js';
import { parseServiceName, serviceFqdn, type ServiceTarget } from './names.js';
import { portProtocol } from './protocol.js';

/** The cluster discovery answers for. */
export interface ClusterContext {
  cluster: string;
  trustDomain: string;
  clusterDomain: string;
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
  const services = [serviceKey(target.namespace, target.service)];
  const service = objects.service(target.namespace, target.service);
  const servicePort = service && addressedPort(service, target.port);
  if (!service || servicePort === undefined) return { info: withRevision({ exists: false }), endpoints: new Map(), services };

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
    const backendService = objects.service(target.namespace, name);
    backends.push(create(BackendSchema, { service: fqdn, namespace: target.namespace, weight, exists: backendService !== undefined }));
    if (name !== target.service) services.push(serviceKey(target.namespace, name));
    const port = backendService && backendPort(backendService, servicePort);
    endpoints.set(fqdn, backendService && port !== undefined ? endpointsOf(objects, backendService, port, ctx) : new Map<string, Endpoint>());
  }
  const info = withRevision({
    exists: true,
    service: serviceFqdn(target.namespace, target.service, ctx.clusterDomain),
    namespace: target.namespace,
    ports: servicePorts(service),
    loadBalancer: service.metadata.annotations?.[LOAD_BALANCER_ANNOTATION] === 'round-robin' ? LoadBalancer.ROUND_ROBIN : LoadBalancer.EWMA,
    backends,
  });
  return { info, endpoints, services };
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
function addressedPort(service: Service, port: number | undefined): ServicePort | undefined {
  const ports = tcpPorts(service);
  if (ports.length === 0 && port !== undefined && service.spec?.clusterIP === 'None') return { port, targetPort: port, protocol: 'TCP' };
  if (port === undefined) return ports.find((p) => p.port === 80) ?? ports[0];
  return ports.find((p) => p.port === port);
}

/** A backend serves the split service's port by the same number, else by the same name. */
function backendPort(backend: Service, port: ServicePort): ServicePort | undefined {
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
 * The endpoints of a service's port: its selected pods that are ready and have an address, and the
 * ready endpoints of the EndpointSlices labelled as its own (a mirror's remote endpoints among them).
 */
function endpointsOf(objects: ClusterObjects, service: Service, port: ServicePort, ctx: ClusterContext): Map<string, Endpoint> {
  const endpoints = new Map<string, Endpoint>();
  const namespace = service.metadata.namespace!;
  const selector = service.spec?.selector;
  // As in Kubernetes, a service without a selector gets no endpoints from pods.
  if (selector && Object.keys(selector).length > 0) {
    for (const pod of objects.pods(namespace)) {
      if (!matchesSelector(pod.metadata.labels, { matchLabels: selector })) continue;
      const endpoint = podEndpoint(pod, port, ctx);
      if (endpoint) endpoints.set(endpointKey(endpoint.address, endpoint.port), endpoint);
    }
  }
  for (const slice of objects.endpointSlices(namespace, service.metadata.name)) {
    for (const endpoint of sliceEndpoints(slice, port, ctx)) endpoints.set(endpointKey(endpoint.address, endpoint.port), endpoint);
  }
  return endpoints;
}

/**
 * The ready endpoints of a slice for a service port (the slice port of the same name, as Kubernetes
 * matches them). With a gateway annotation each endpoint is another cluster's workload, reached
 * through that gateway by its SNI route key and verified by its identity; one without an identity
 * is left out rather than reached unverified. Without one, an endpoint with an identity is reached
 * at its own proxy, and one without in plaintext.
 */
function sliceEndpoints(slice: EndpointSlice, port: ServicePort, ctx: ClusterContext): Endpoint[] {
  const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === (port.name ?? ''));
  if (slicePort?.port === undefined || (slicePort.protocol ?? 'TCP') !== 'TCP') return [];
  const annotations = slice.metadata.annotations ?? {};
  const gatewayText = annotations[MIRROR_ANNOTATIONS.gateway];
  const gateway = gatewayText === undefined ? undefined : parseHostPort(gatewayText);
  if (gatewayText !== undefined && !gateway) return [];
  const identities = parseEndpointIdentities(annotations[MIRROR_ANNOTATIONS.endpointIdentities]) ?? {};
  const cluster = slice.metadata.labels?.[MIRROR_LABELS.remoteCluster] ?? ctx.cluster;
  const endpoints: Endpoint[] = [];
  for (const sliceEndpoint of slice.endpoints ?? []) {
    if (!isSliceEndpointReady(sliceEndpoint)) continue;
    for (const address of sliceEndpoint.addresses) {
      const remote = identities[address];
      if (gateway && !remote) continue;
      const proxy = gateway ? { host: gateway.host, port: gateway.port, sni: remote!.sni } : remote ? { host: address, port: PROXY_PORTS.inbound } : undefined;
      endpoints.push(
        withEndpointRevision(
          create(EndpointSchema, { address, port: slicePort.port, identity: remote?.identity ?? '', proxy, cluster, pod: sliceEndpoint.targetRef?.name ?? '' }),
        ),
      );
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

function podEndpoint(pod: Pod, port: ServicePort, ctx: ClusterContext): Endpoint | undefined {
  if (!isPodReady(pod)) return undefined;
  const targetPort = resolveTargetPort(pod, port.targetPort ?? port.port);
  if (targetPort === undefined) return undefined;
  const address = pod.status!.podIP!;
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
    }),
  );
}

function withEndpointRevision(endpoint: Endpoint): Endpoint {
  endpoint.revision = revisionOf([endpoint.identity, endpoint.proxy?.host, endpoint.proxy?.port, endpoint.proxy?.sni, endpoint.cluster, endpoint.pod]);
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
