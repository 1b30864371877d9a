// Names the mesh's parts agree on: the proxy container that injection adds and discovery looks for,
// the proxy's ports, and the annotations that steer it.

/** The container injection adds beside a meshed pod's app; a pod with it is meshed. */
export const PROXY_CONTAINER = 'strait-proxy';

/** The proxy's ports on the pod's address, as Linkerd's proxy uses them. */
export const PROXY_PORTS = { outbound: 4140, inbound: 4143, admin: 4191 } as const;

/**
 * Error metadata discovery sets (to "true") when a name can never be a service, so a proxy answers
 * it "no such service" for good; an error without it (a stream cut short) is retried.
 */
export const NOT_A_SERVICE_NAME_METADATA = 'strait-not-a-service-name';

/** Service annotation choosing the balancer: `ewma` (default) or `round-robin`. */
export const LOAD_BALANCER_ANNOTATION = 'strait.dev/load-balancer';

interface PodContainers<C> {
  spec?: { containers: C[]; initContainers?: C[] };
}

/** The pod's proxy container: beside the app, or a native sidecar (an init container that keeps running, as on Kubernetes). */
export function proxyContainer<C extends { name: string }>(pod: PodContainers<C>): C | undefined {
  return pod.spec?.containers.find((c) => c.name === PROXY_CONTAINER) ?? pod.spec?.initContainers?.find((c) => c.name === PROXY_CONTAINER);
}

/** A pod is meshed when injection gave it a proxy. */
export function isMeshed(pod: PodContainers<{ name: string }>): boolean {
  return proxyContainer(pod) !== undefined;
}
