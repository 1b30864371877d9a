// The logical stage: what a name routes to. One Route per authority the app calls, kept current by
// the resolver's watch, splits calls over its backends (the service, or each TrafficSplit leg) by
// weight and hands each to that backend's balancer (the concrete stage), whose endpoint state
// (latency, back-off) survives updates. Nothing here ever drops the last known state: when
// discovery goes quiet, routing carries on with what it last said.
import { Balancer, type EndpointState, type SharedBackoff } from '../concrete/balancer.js';
import { endpointKey, RouteEndpoint, type Pick } from '../concrete/route-endpoint.js';
import type { Backend, Destination, DestinationWatch, Endpoint } from '../../destinations.js';
import type { HttpSeries, MetricLabels, ProxyMetrics } from '../../metrics.js';
import { pickWeighted, usableBackends } from './split.js';

export interface BackendRoute {
  backend: Backend;
  weight: number;
  balancer: Balancer<RouteEndpoint>;
}

export type RouteProblem = { problem: string };

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
          onAnswer: (re, status, ms) => re.httpSeries().latency(status, ms),
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
      if (state) return backend.balancer.lease(state);
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
