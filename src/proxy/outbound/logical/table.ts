// One Route per authority the app calls, made on first use and dropped least recently used first.
// Endpoints reached through one gateway share a back-off across every route.
import { SharedBackoff } from '../concrete/balancer.js';
import type { Resolver } from '../../destinations.js';
import type { ProxyMetrics } from '../../metrics.js';
import { Route, type RouteOptions } from './route.js';

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
