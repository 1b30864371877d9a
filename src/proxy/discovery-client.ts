// The proxy's discovery client: one HTTP/2 mTLS connection to the control plane, one stream per
// watched name (and one for the pod's inbound configuration), each kept current by applying the
// control plane's incremental updates. When a stream breaks it reconnects with back-off and resumes
// from what it holds; meanwhile, and for as long as the control plane stays away, every watch keeps
// answering with the last state it knew (static stability): nothing is cleared on a disconnect.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SecureContext } from 'node:tls';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, type Http2SessionManager } from '@connectrpc/connect-node';
import { h2SessionManager } from '../api/h2-sessions.js';
import {
  Discovery,
  LoadBalancer as LoadBalancerEnum,
  Protocol,
  ResumeSchema,
  type DestinationInfo,
  type Endpoint as EndpointMessage,
  type InboundResponse,
  type Port,
  type ResolveResponse,
} from '../api/gen/strait/discovery/v1/discovery_pb.js';
import { NOT_A_SERVICE_NAME_METADATA } from '../api/mesh.js';
import { clientTlsOptions, type TlsIdentity } from '../identity/tls.js';
import type { Destination, DestinationPort, DestinationWatch, Endpoint, InboundConfig, Resolver } from './destinations.js';
import { LiveValue } from './live-value.js';

export interface DiscoveryClientOptions {
  controlPlane: { host: string; port: number };
  /** The SPIFFE ID the control plane's certificate must carry. */
  controlPlaneIdentity: string;
  /** The proxy's workload certificate, presented to the control plane; the newest is used for each new connection. */
  identity: TlsIdentity;
  /** Reconnect delays: doubling from `initialMs` (100) up to `maxMs` (5000), with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Every update applied and every stream failure, for logs and metrics. */
  onEvent?: (event: DiscoveryEvent) => void;
}

export type DiscoveryStream = 'resolve' | 'inbound';

export type DiscoveryEvent =
  | { type: 'update'; stream: DiscoveryStream; name: string; version: string; reset: boolean }
  /** A stream failed or ended; `retryInMs` is absent when it will not be retried (the name can never resolve). */
  | { type: 'error'; stream: DiscoveryStream; name: string; error: ConnectError; retryInMs?: number };

/** The pod's inbound configuration, kept current. */
export interface InboundWatch {
  /** The latest known configuration; undefined until the first answer. */
  current(): InboundConfig | undefined;
  ready(timeoutMs: number): Promise<InboundConfig>;
  onUpdate(listener: (config: InboundConfig) => void): () => void;
  close(): void;
}

/** What the streams of one client share: its connection, back-off, events and lifetime. */
interface StreamContext {
  client(): Client<typeof Discovery>;
  backoff: { initialMs: number; maxMs: number };
  emit(event: DiscoveryEvent): void;
  /** Aborted when the client closes. */
  closed: AbortSignal;
}

export class DiscoveryClient implements Resolver {
  private readonly baseUrl: string;
  private connection: { context: SecureContext; client: Client<typeof Discovery> } | undefined;
  /** The connections not yet closed (one per certificate: a replaced one closes once idle). */
  private managers: Http2SessionManager[] = [];
  private readonly destinations = new Map<string, DestinationStream>();
  private readonly closing = new AbortController();
  private readonly context: StreamContext;

  constructor(private readonly options: DiscoveryClientOptions) {
    const { host, port } = options.controlPlane;
    this.baseUrl = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.context = {
      client: () => this.client(),
      backoff: { initialMs: options.backoff?.initialMs ?? 100, maxMs: options.backoff?.maxMs ?? 5_000 },
      emit: (event) => options.onEvent?.(event),
      closed: this.closing.signal,
    };
  }

  /** Watches `name` (a request's authority). Watches of one name share one stream. */
  watch(name: string): DestinationWatch {
    let stream = this.destinations.get(name);
    if (!stream || stream.closed) {
      const created = new DestinationStream(this.context, name, () => {
        if (this.destinations.get(name) === created) this.destinations.delete(name);
      });
      this.destinations.set(name, (stream = created));
    }
    return stream.handle();
  }

  /** Watches the inbound configuration of this proxy's pod (the certificate must be the pod's service account's). */
  watchInbound(pod: string, namespace = ''): InboundWatch {
    const live = new LiveValue<InboundConfig>(`inbound configuration of pod ${namespace ? `${namespace}/` : ''}${pod}`);
    const stop = new AbortController();
    void keepStreaming(this.context, {
      stream: 'inbound',
      name: pod,
      signal: AbortSignal.any([stop.signal, this.closing.signal]),
      open: (client, signal) => client.inbound({ pod, namespace }, { signal }),
      onMessage: (res: InboundResponse) => {
        this.context.emit({ type: 'update', stream: 'inbound', name: pod, version: res.version, reset: true });
        live.set(toInboundConfig(res));
      },
      onFailure: (err) => live.failed(err),
    });
    return { ...live.watchApi(), close: () => stop.abort() };
  }

  /** Ends every stream and closes the connection. The watches keep their last state. */
  close(): void {
    this.closing.abort();
    for (const manager of this.managers) manager.abort();
  }

  /** The client over the connection for the current certificate; a rotation starts a new connection for new streams. */
  private client(): Client<typeof Discovery> {
    const context = this.options.identity.secureContext();
    if (this.connection?.context !== context) {
      const manager = h2SessionManager(this.baseUrl, clientTlsOptions(this.options.identity, this.options.controlPlaneIdentity));
      this.managers = [...this.managers.filter((m) => m.state() !== 'closed'), manager];
      this.connection = { context, client: createClient(Discovery, createConnectTransport({ baseUrl: this.baseUrl, httpVersion: '2', sessionManager: manager })) };
    }
    return this.connection.client;
  }
}

/**
 * Keeps one server stream running until `signal`: opens it, hands each message over, and after an
 * error or an end reopens it with back-off. `onFailure` returning false stops the retries (a
 * stream that can never succeed).
 */
async function keepStreaming<T>(
  ctx: StreamContext,
  spec: {
    stream: DiscoveryStream;
    name: string;
    signal: AbortSignal;
    open: (client: Client<typeof Discovery>, signal: AbortSignal) => AsyncIterable<T>;
    onMessage: (message: T) => void;
    onFailure: (err: ConnectError) => boolean | void;
  },
): Promise<void> {
  let failures = 0;
  while (!spec.signal.aborted) {
    let error: ConnectError;
    try {
      for await (const message of spec.open(ctx.client(), spec.signal)) {
        failures = 0;
        spec.onMessage(message);
      }
      error = new ConnectError('the control plane ended the stream', Code.Unavailable);
    } catch (err) {
      error = ConnectError.from(err);
    }
    if (spec.signal.aborted) return;
    const retry = spec.onFailure(error) !== false;
    failures++;
    const ceiling = Math.min(ctx.backoff.maxMs, ctx.backoff.initialMs * 2 ** (failures - 1));
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2; // jitter, so proxies do not come back in step
    ctx.emit({ type: 'error', stream: spec.stream, name: spec.name, error, ...(retry ? { retryInMs: Math.round(delay) } : {}) });
    if (!retry) return;
    await sleep(delay, undefined, { signal: spec.signal }).catch(() => {}); // an abort ends the wait early
  }
}

/** One name's stream and what it holds; shared by every watch of the name. */
class DestinationStream {
  private info: DestinationInfo | undefined;
  /** Backend service → endpoint key → endpoint, as the control plane last described them. */
  private endpoints = new Map<string, Map<string, EndpointMessage>>();
  private version = '';
  private readonly live: LiveValue<Destination>;
  private readonly stop = new AbortController();
  private handles = 0;
  closed = false;

  constructor(
    private readonly ctx: StreamContext,
    private readonly name: string,
    private readonly onClosed: () => void,
  ) {
    this.live = new LiveValue(`destination ${name}`);
    void keepStreaming(ctx, {
      stream: 'resolve',
      name,
      signal: AbortSignal.any([this.stop.signal, ctx.closed]),
      open: (client, signal) => client.resolve({ name, resume: this.resume() }, { signal }),
      onMessage: (update: ResolveResponse) => this.apply(update),
      onFailure: (err) => {
        // Only the control plane's own word is final: a stream cut short (a control plane killed
        // mid-answer) can fail with the same code, and must be retried like any other failure.
        if (err.code !== Code.InvalidArgument || err.metadata.get(NOT_A_SERVICE_NAME_METADATA) !== 'true') return this.live.failed(err);
        // The control plane says the name can never be a service: that is the answer, for good.
        this.live.set({ authority: name, exists: false, ports: [], backends: [], loadBalancer: 'ewma', version: '' });
        return false;
      },
    });
  }

  handle(): DestinationWatch {
    this.handles++;
    let closed = false;
    return {
      ...this.live.watchApi(),
      close: () => {
        if (closed) return;
        closed = true;
        if (--this.handles > 0) return;
        this.closed = true;
        this.stop.abort();
        this.onClosed();
      },
    };
  }

  /** What a reconnecting stream tells the control plane it holds. */
  private resume() {
    if (!this.info) return undefined;
    const endpoints = [...this.endpoints].flatMap(([backend, byKey]) =>
      [...byKey.values()].map((e) => ({ backend, address: e.address, port: e.port, revision: e.revision })),
    );
    return create(ResumeSchema, { destinationRevision: this.info.revision, endpoints });
  }

  private apply(update: ResolveResponse): void {
    this.ctx.emit({ type: 'update', stream: 'resolve', name: this.name, version: update.version, reset: update.reset });
    const changed = update.reset || update.destination !== undefined || update.endpoints.length > 0;
    if (update.reset) {
      this.info = undefined;
      this.endpoints = new Map();
    }
    if (update.destination) {
      this.info = update.destination;
      // Backends no longer listed go, with their endpoints; new ones start empty.
      this.endpoints = new Map(update.destination.backends.map((b) => [b.service, this.endpoints.get(b.service) ?? new Map<string, EndpointMessage>()]));
    }
    for (const change of update.endpoints) {
      const byKey = this.endpoints.get(change.backend);
      if (!byKey) continue;
      for (const gone of change.removed) byKey.delete(endpointKey(gone.address, gone.port));
      for (const endpoint of change.added) byKey.set(endpointKey(endpoint.address, endpoint.port), endpoint);
    }
    this.version = update.version;
    if (this.info && (changed || this.live.current() === undefined)) this.live.set(this.destination(this.info));
  }

  private destination(info: DestinationInfo): Destination {
    return {
      authority: this.name,
      ...(info.exists ? { service: info.service, namespace: info.namespace } : {}),
      exists: info.exists,
      ports: info.ports.map(toPort),
      backends: info.backends.map((b) => ({
        service: b.service,
        namespace: b.namespace,
        weight: b.weight,
        exists: b.exists,
        endpoints: [...(this.endpoints.get(b.service)?.values() ?? [])].map(toEndpoint),
      })),
      loadBalancer: info.loadBalancer === LoadBalancerEnum.ROUND_ROBIN ? 'round-robin' : 'ewma',
      version: this.version,
    };
  }
}

const endpointKey = (address: string, port: number) => `${address}|${port}`;

function toPort(p: Port): DestinationPort {
  return { ...(p.name ? { name: p.name } : {}), port: p.port, protocol: p.protocol === Protocol.TCP ? 'tcp' : 'http' };
}

function toEndpoint(e: EndpointMessage): Endpoint {
  return {
    address: e.address,
    port: e.port,
    ...(e.identity ? { identity: e.identity } : {}),
    ...(e.proxy ? { proxy: { host: e.proxy.host, port: e.proxy.port, ...(e.proxy.sni ? { sni: e.proxy.sni } : {}) } } : {}),
    cluster: e.cluster,
    ...(e.pod ? { pod: e.pod } : {}),
    ready: true,
    ...(e.priority ? { priority: e.priority } : {}),
  };
}

function toInboundConfig(res: InboundResponse): InboundConfig {
  return { pod: res.pod, namespace: res.namespace, cluster: res.cluster, ports: res.ports.map(toPort), version: res.version };
}
