// Route keys: the names a client puts in the TLS SNI to tell a cluster's gateway where its
// connection goes. One module for both sides — whoever publishes a key and the gateway that routes
// by it — so the two cannot drift apart. The scheme, read from the right (every key is a valid DNS
// name, each label at most 63 characters, at most 253 in all, and no two keys are alike):
//
//   <pod>.<namespace>.<cluster>.ep.strait.mesh   one endpoint (pod) of an exported service
//   probe.<cluster>.gw.strait.mesh               the gateway's own liveness probe (`GET /ready`)
//   api.<cluster>.gw.strait.mesh                 the cluster's mesh API
//
// The cluster and the namespace are DNS-1123 labels (no dots), so reading from the right finds
// them; whatever is left of the namespace is the pod name, which may itself hold dots. `ep` and
// `gw` keep pods and the gateway's own names apart whatever a pod is called. `strait.mesh` is not
// a delegated domain: keys only ever travel in SNI and are never resolved.
import { isDns1123Label, isDns1123Subdomain } from './names.js';

export const ROUTE_KEY_DOMAIN = 'strait.mesh';
const ENDPOINT_SUFFIX = `.ep.${ROUTE_KEY_DOMAIN}`;
const GATEWAY_SUFFIX = `.gw.${ROUTE_KEY_DOMAIN}`;
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

export type RouteKey =
  | { kind: 'endpoint'; cluster: string; namespace: string; pod: string }
  | { kind: 'probe'; cluster: string }
  | { kind: 'mesh-api'; cluster: string };

/** A route key cannot be made from these names; the message says which name and why. */
export class RouteKeyError extends Error {
  override name = 'RouteKeyError';
}

function checkCluster(cluster: string): void {
  if (!isDns1123Label(cluster)) throw new RouteKeyError(`cluster name "${cluster}" is not a valid DNS-1123 label`);
}

/** The key of one pod of an exported service: `<pod>.<namespace>.<cluster>.ep.strait.mesh`. */
export function endpointRouteKey(cluster: string, namespace: string, pod: string): string {
  checkCluster(cluster);
  if (!isDns1123Label(namespace)) throw new RouteKeyError(`namespace "${namespace}" is not a valid DNS-1123 label`);
  if (!isDns1123Subdomain(pod)) throw new RouteKeyError(`pod name "${pod}" is not a valid DNS-1123 subdomain`);
  const longLabel = pod.split('.').find((label) => label.length > MAX_LABEL_LENGTH);
  if (longLabel !== undefined) throw new RouteKeyError(`pod name "${pod}" has a label longer than ${MAX_LABEL_LENGTH} characters, which cannot go in SNI`);
  const key = `${pod}.${namespace}.${cluster}${ENDPOINT_SUFFIX}`;
  if (key.length > MAX_NAME_LENGTH) {
    throw new RouteKeyError(`the route key for pod "${pod}" in namespace "${namespace}" of cluster "${cluster}" would be ${key.length} characters, more than the ${MAX_NAME_LENGTH} a host name may have`);
  }
  return key;
}

/** The key of a cluster's gateway probe: `probe.<cluster>.gw.strait.mesh`. */
export function probeRouteKey(cluster: string): string {
  checkCluster(cluster);
  return `probe.${cluster}${GATEWAY_SUFFIX}`;
}

/** The key of a cluster's mesh API: `api.<cluster>.gw.strait.mesh`. */
export function meshApiRouteKey(cluster: string): string {
  checkCluster(cluster);
  return `api.${cluster}${GATEWAY_SUFFIX}`;
}

export function formatRouteKey(key: RouteKey): string {
  switch (key.kind) {
    case 'endpoint':
      return endpointRouteKey(key.cluster, key.namespace, key.pod);
    case 'probe':
      return probeRouteKey(key.cluster);
    case 'mesh-api':
      return meshApiRouteKey(key.cluster);
  }
}

/** What a server name means as a route key (case-insensitive, as host names are), or undefined when it is none. */
export function parseRouteKey(serverName: string): RouteKey | undefined {
  const name = serverName.toLowerCase();
  if (name.length > MAX_NAME_LENGTH) return undefined;
  if (name.endsWith(GATEWAY_SUFFIX)) {
    const labels = name.slice(0, -GATEWAY_SUFFIX.length).split('.');
    if (labels.length !== 2 || !isDns1123Label(labels[1]!)) return undefined;
    const [service, cluster] = labels as [string, string];
    if (service === 'probe') return { kind: 'probe', cluster };
    if (service === 'api') return { kind: 'mesh-api', cluster };
    return undefined;
  }
  if (name.endsWith(ENDPOINT_SUFFIX)) {
    const labels = name.slice(0, -ENDPOINT_SUFFIX.length).split('.');
    if (labels.length < 3) return undefined;
    const cluster = labels.pop()!;
    const namespace = labels.pop()!;
    const pod = labels.join('.');
    if (!isDns1123Label(cluster) || !isDns1123Label(namespace) || !isDns1123Subdomain(pod)) return undefined;
    if (labels.some((label) => label.length > MAX_LABEL_LENGTH)) return undefined;
    return { kind: 'endpoint', cluster, namespace, pod };
  }
  return undefined;
}
