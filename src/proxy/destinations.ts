// What the proxy knows about a destination: the contract between the discovery client (which fills it
// from the control plane's stream) and the data plane (which routes with it). Nothing here talks to
// the network.

/** One place a request can go. */
export interface Endpoint {
  /** The workload's address (pod IP) and the port its app listens on (the Service's targetPort, resolved). */
  address: string;
  port: number;
  /**
   * The SPIFFE ID the server's proxy must present. Absent for an unmeshed endpoint, which is reached
   * directly, in plaintext, at address:port.
   */
  identity?: string;
  /** Where the server's proxy accepts mTLS for this endpoint: the pod's inbound port, or a gateway. */
  proxy?: { host: string; port: number; /** TLS SNI to send; a routing key when through a gateway. */ sni?: string };
  /** The cluster the endpoint lives in. */
  cluster: string;
  /** The pod's name, for metrics and `/config`. */
  pod?: string;
  ready: boolean;
  /**
   * The endpoint's tier (affinity and failover): 0, the default, is most preferred. Traffic goes to
   * the lowest tier with an endpoint that can be reached, and moves on only while none can.
   */
  priority?: number;
}

/** A weighted leg of a destination: the service itself, or one TrafficSplit backend. */
export interface Backend {
  /** Fully qualified service name, e.g. `helloworld-cluster1.sample.svc.cluster.local`. */
  service: string;
  namespace: string;
  weight: number;
  /** False when the backend names a service that does not exist (its share is skipped). */
  exists: boolean;
  endpoints: Endpoint[];
}

export interface DestinationPort {
  name?: string;
  port: number;
  protocol: 'http' | 'tcp';
}

export type LoadBalancer = 'ewma' | 'round-robin';

export interface Destination {
  /** The name asked for, as the caller wrote it (`helloworld`, `helloworld.sample.svc.cluster.local:5000`). */
  authority: string;
  /** Fully qualified service name; absent when `exists` is false. */
  service?: string;
  namespace?: string;
  /** False: the control plane says there is no such service (the caller gets 503 saying so). */
  exists: boolean;
  ports: DestinationPort[];
  backends: Backend[];
  loadBalancer: LoadBalancer;
  /** Monotonic version from the control plane; a reconnecting client resumes from it. */
  version: string;
}

/** A live view of one destination, kept current by the resolver. */
export interface DestinationWatch {
  /** The latest known state; undefined until the first answer. */
  current(): Destination | undefined;
  /** Resolves with the first answer (or rejects when none arrives in time). */
  ready(timeoutMs: number): Promise<Destination>;
  onUpdate(listener: (d: Destination) => void): () => void;
  close(): void;
}

/** Resolves names for the data plane. The discovery client implements it; tests may use a static one. */
export interface Resolver {
  /** `name` is the request's authority: a service name in any of its forms, with or without port. */
  watch(name: string): DestinationWatch;
  close(): void;
}

/** The proxy's own pod, from the second discovery stream. */
export interface InboundConfig {
  pod: string;
  namespace: string;
  cluster: string;
  /** The ports the app listens on (containerPorts), with the protocol the Service declares, if any. */
  ports: DestinationPort[];
  version: string;
}
