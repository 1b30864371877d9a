// What the outbound side routes with: one Route per authority the app calls, kept current by the
// resolver's watch. A route holds a balancer per backend (the service, or each TrafficSplit leg)
// whose endpoint state (latency, back-off) survives updates. Nothing here ever drops the last
// known state: when discovery goes quiet, routing carries on with what it last said. Endpoints
// reached through one gateway share a back-off across every route (see balancer.ts).
import { Balancer, SharedBackoff, type EndpointState } from './balancer.js';
import { meshTarget, type MeshTarget } from './connector.js';
import type { Backend, Destination, DestinationWatch, Endpoint, Resolver } from './destinations.js';
import type { HttpSeries, MetricLabels, ProxyMetrics } from './metrics.js';
import { pickWeighted, usableBackends } from './split.js';

/** One endpoint as a route sees it: where to send, and the metric series its requests count in. */
export class RouteEndpoint {
  private series: HttpSeries | undefined;
  private target: MeshTarget | undefined;

  constructor(
    readonly endpoint: Endpoint,
    readonly labels: MetricLabels,
    private readonly metrics: ProxyMetrics,
  ) {}

  /** The gateway (`host:port`) this endpoint is reached through; undefined when it is reached directly. */
  get gateway(): string | undefined {
    const { proxy } = this.endpoint;
    return proxy?.sni ? `${proxy.host}:${proxy.port}` : undefined;
  }

  httpSeries(): HttpSeries {
    return (this.series ??= this.metrics.httpSeries(this.labels));
  }

  /** Where this endpoint's proxy takes mTLS; undefined for an unmeshed endpoint. */
  meshTarget(defaultInboundPort: number): MeshTarget | undefined {
    const { endpoint } = this;
    if (endpoint.identity === undefined) return undefined;
    return (this.target ??= meshTarget({ ...endpoint, identity: endpoint.identity }, defaultInboundPort));
  }
}

export interface BackendRoute {
  backend: Backend;
  weight: number;
  balancer: Balancer<RouteEndpoint>;
}

export type Pick = { backend: BackendRoute; state: EndpointState<RouteEndpoint> };
export type RouteProblem = { problem: string };

export function endpointKey(e: Endpoint): string {
  return `${e.address}:${e.port}|${e.identity ?? ''}|${e.proxy ? `${e.proxy.host}:${e.proxy.port}|${e.proxy.sni ?? ''}` : ''}`;
}

/** The first DNS label of a service name, as Linkerd's `dst_service` shows it. */
export function shortName(service: string): string {
  const dot = service.indexOf('.');
  return dot === -1 ? service : service.slice(0, dot);
}

export interface RouteOptions {
  cluster: string;
  metrics: ProxyMetrics;
  clock: () => number;
  random: () => number;
  /** The back-off shared by every endpoint reached through the gateway at `address` (`host:port`). */
  gatewayBackoff: (address: string) => SharedBackoff;
}

export class Route {
  lastUsed = 0;
  private backends: BackendRoute[] = [];
  private usable: BackendRoute[] = [];
  private totalWeight = 0;
  private current: Destination | undefined;
  private resolving: Promise<Destination | undefined> | undefined;
  private readonly unsubscribe: () => void;
  private errorSeries: HttpSeries | undefined;

  constructor(
    readonly authority: string,
    private readonly watch: DestinationWatch,
    private readonly options: RouteOptions,
  ) {
    this.unsubscribe = watch.onUpdate((d) => this.apply(d));
    const known = watch.current();
    if (known) this.apply(known);
  }

  get destination(): Destination | undefined {
    return this.current;
  }

  /** The destination, waiting up to `timeoutMs` for discovery's first answer; undefined if none came. */
  resolve(timeoutMs: number): Promise<Destination | undefined> {
    if (this.current) return Promise.resolve(this.current);
    this.resolving ??= this.watch.ready(timeoutMs).then(
      (d) => {
        this.resolving = undefined;
        if (!this.current) this.apply(d);
        return this.current;
      },
      () => {
        this.resolving = undefined;
        return this.current;
      },
    );
    return this.resolving;
  }

  private apply(d: Destination): void {
    this.current = d;
    const previous = new Map(this.backends.map((b) => [b.backend.service, b]));
    this.backends = d.backends.map((backend) => {
      const route = previous.get(backend.service) ?? {
        backend,
        weight: backend.weight,
        balancer: new Balancer<RouteEndpoint>(d.loadBalancer, {
          clock: this.options.clock,
          random: this.options.random,
          tierOf: (re) => re.endpoint.priority ?? 0,
          sharedBackoffOf: (re) => (re.gateway === undefined ? undefined : this.options.gatewayBackoff(re.gateway)),
        }),
      };
      route.backend = backend;
      route.weight = backend.weight;
      route.balancer.kind = d.loadBalancer;
      const ready = backend.exists ? backend.endpoints.filter((e) => e.ready) : [];
      route.balancer.update(
        ready.map((e) => new RouteEndpoint(e, this.endpointLabels(d, backend, e), this.options.metrics)),
        (re) => endpointKey(re.endpoint),
      );
      return route;
    });
    ({ usable: this.usable, totalWeight: this.totalWeight } = usableBackends(this.backends, (b) => b.balancer.endpoints.length > 0));
  }

  private endpointLabels(d: Destination, backend: Backend, e: Endpoint): MetricLabels {
    return {
      direction: 'outbound',
      authority: this.authority,
      ...(e.identity ? { tls: 'true', server_id: e.identity } : { tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery' }),
      dst_service: shortName(d.service ?? backend.service),
      dst_namespace: d.namespace ?? backend.namespace,
      dst_backend: shortName(backend.service),
      ...(e.pod ? { dst_pod: e.pod } : {}),
      src_cluster: this.options.cluster,
      dst_cluster: e.cluster,
    };
  }

  /** The series for requests that never reached an endpoint (no such service, no endpoints). */
  unroutedSeries(): HttpSeries {
    const d = this.current;
    if (this.errorSeries && d) return this.errorSeries;
    const series = this.options.metrics.httpSeries({
      direction: 'outbound',
      authority: this.authority,
      ...(d?.service ? { dst_service: shortName(d.service) } : {}),
      ...(d?.namespace ? { dst_namespace: d.namespace } : {}),
      src_cluster: this.options.cluster,
    });
    // Before the first answer the labels are incomplete, so the series is not kept.
    if (d) this.errorSeries = series;
    return series;
  }

  /** Picks a backend by weight, then an endpoint in it, avoiding `tried`. */
  pick(tried?: ReadonlySet<EndpointState<RouteEndpoint>>): Pick | RouteProblem {
    const d = this.current;
    if (!d) return { problem: `discovery has not answered for "${this.authority}"` };
    if (!d.exists) return { problem: `no such service "${this.authority}"` };
    let usable = this.usable;
    let totalWeight = this.totalWeight;
    for (;;) {
      const backend = pickWeighted(usable, totalWeight, this.options.random);
      if (!backend) return { problem: this.noEndpoints(d, tried !== undefined && tried.size > 0) };
      const state = backend.balancer.pick(tried);
      if (state) return { backend, state };
      // Every endpoint of this backend was tried: give its share to the others.
      usable = usable.filter((b) => b !== backend);
      totalWeight -= backend.weight;
    }
  }

  private noEndpoints(d: Destination, afterFailures: boolean): string {
    const name = d.service ?? this.authority;
    if (afterFailures) return `no endpoint of ${name} could be reached`;
    const missing = d.backends.filter((b) => !b.exists).map((b) => b.service);
    return `no ready endpoints for ${name}${missing.length > 0 ? ` (backends that do not exist: ${missing.join(', ')})` : ''}`;
  }

  snapshot(now: number): unknown {
    const d = this.current;
    return {
      authority: this.authority,
      resolved: d !== undefined,
      ...(d
        ? { service: d.service, namespace: d.namespace, exists: d.exists, loadBalancer: d.loadBalancer, version: d.version, ports: d.ports }
        : {}),
      backends: this.backends.map((b) => ({
        service: b.backend.service,
        weight: b.weight,
        exists: b.backend.exists,
        usable: this.usable.includes(b),
        activeTier: b.balancer.activeTier() ?? null,
        endpoints: b.balancer.endpoints.map((s) => ({
          ...s.target.endpoint,
          priority: s.tier,
          pending: s.pending,
          ewmaMs: Math.round(s.ewma.value(now) * 1000) / 1000,
          failures: s.failures,
          backoffMs: s.inBackoff(now) ? Math.round(Math.max(s.backoffUntil, s.shared?.until ?? 0) - now) : 0,
          ...(s.shared ? { gatewayFailures: s.shared.failures } : {}),
        })),
        notReady: b.backend.endpoints.filter((e) => !e.ready).map((e) => `${e.address}:${e.port}`),
      })),
    };
  }

  close(): void {
    this.unsubscribe();
    this.watch.close();
  }
}

export interface RouteTableOptions {
  resolver: Resolver;
  cluster: string;
  metrics: ProxyMetrics;
  /** Distinct authorities kept at most; the least recently used one is dropped beyond it. */
  maxRoutes?: number;
  clock?: () => number;
  random?: () => number;
}

export class RouteTable {
  private readonly routes = new Map<string, Route>();
  /** By gateway address, for every route: one gateway's failure is every endpoint's behind it. */
  private readonly gateways = new Map<string, SharedBackoff>();
  private readonly maxRoutes: number;
  private readonly routeOptions: RouteOptions;

  constructor(private readonly options: RouteTableOptions) {
    this.maxRoutes = options.maxRoutes ?? 1000;
    this.routeOptions = {
      cluster: options.cluster,
      metrics: options.metrics,
      clock: options.clock ?? (() => performance.now()),
      random: options.random ?? Math.random,
      gatewayBackoff: (address) => {
        let shared = this.gateways.get(address);
        if (!shared) this.gateways.set(address, (shared = new SharedBackoff(address)));
        return shared;
      },
    };
  }

  /** The route for `authority` (lower-cased by the caller), watching it from the first call on. */
  get(authority: string): Route {
    const now = this.routeOptions.clock();
    let route = this.routes.get(authority);
    if (!route) {
      if (this.routes.size >= this.maxRoutes) this.evictLeastRecentlyUsed();
      route = new Route(authority, this.options.resolver.watch(authority), this.routeOptions);
      this.routes.set(authority, route);
    }
    route.lastUsed = now;
    return route;
  }

  private evictLeastRecentlyUsed(): void {
    let oldest: Route | undefined;
    for (const route of this.routes.values()) if (!oldest || route.lastUsed < oldest.lastUsed) oldest = route;
    if (!oldest) return;
    oldest.close();
    this.routes.delete(oldest.authority);
  }

  snapshot(): unknown[] {
    const now = this.routeOptions.clock();
    return [...this.routes.values()].map((r) => r.snapshot(now));
  }

  close(): void {
    for (const route of this.routes.values()) route.close();
    this.routes.clear();
  }
}
