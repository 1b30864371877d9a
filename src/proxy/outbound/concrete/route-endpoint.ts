// An endpoint as the balancer holds it: where to send (the endpoint, its proxy's mTLS address) and
// the metric series its requests count in.
import type { Endpoint } from '../../destinations.js';
import type { HttpSeries, MetricLabels, ProxyMetrics } from '../../metrics.js';
import { meshTarget, type MeshTarget } from '../endpoint/target.js';
import type { Lease } from './balancer.js';

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

export function endpointKey(e: Endpoint): string {
  return `${e.address}:${e.port}|${e.identity ?? ''}|${e.proxy ? `${e.proxy.host}:${e.proxy.port}|${e.proxy.sni ?? ''}` : ''}`;
}

/** An endpoint picked for one call, and the handle through which the call reports on it. */
export type Pick = Lease<RouteEndpoint>;
