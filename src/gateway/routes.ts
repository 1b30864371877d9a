// What the gateway may do with a connection, by the server name in its ClientHello. The gateway
// asks a RouteTable for every connection and forwards only to what it answers: a name it does not
// know is refused, so the gateway is never an open relay.
//
// The mesh API is spliced like an endpoint rather than terminated here: the control plane runs it
// in its own process behind its own identity and checks the link credential itself, so the gateway
// holds no credentials but its own and stays a router for everything but its probe.
import { isIP } from 'node:net';

export type Route =
  /** One endpoint (pod) of an exported service: spliced byte for byte to its proxy's inbound port. */
  | { kind: 'endpoint'; host: string; port: number }
  /** The control plane's mesh API: spliced byte for byte; the control plane terminates TLS. */
  | { kind: 'mesh-api'; host: string; port: number }
  /** The gateway's own probe: terminated here with the gateway's identity, answering `GET /ready`. */
  | { kind: 'probe' };

/** The routes the gateway splices rather than terminates. */
export type SpliceRoute = Extract<Route, { host: string }>;

export interface RouteTable {
  /** The route for a server name (lower case, as the gateway always asks), or undefined to refuse it. */
  lookup(serverName: string): Route | undefined;
}

/** Why a route cannot be used, or undefined when it can. */
export function routeProblem(route: Route): string | undefined {
  if (route.kind === 'probe') return undefined;
  if (route.host === '') return 'host is empty';
  if (isIP(route.host) === 0 && !/^[A-Za-z0-9.-]+$/.test(route.host)) return `host "${route.host}" is neither an IP address nor a host name`;
  if (!Number.isInteger(route.port) || route.port < 1 || route.port > 65535) return `port ${route.port} is not a TCP port (1-65535)`;
  return undefined;
}

/** A route table kept in memory; the control plane's route source (and tests) update it as endpoints come and go. */
export class StaticRouteTable implements RouteTable {
  private readonly routes = new Map<string, Route>();

  constructor(entries: Iterable<readonly [string, Route]> = []) {
    for (const [name, route] of entries) this.set(name, route);
  }

  /** Routes `serverName` (case-insensitive) to `route`; throws on a route that cannot be used. */
  set(serverName: string, route: Route): void {
    if (serverName === '') throw new Error('a route needs a server name');
    const problem = routeProblem(route);
    if (problem) throw new Error(`route for "${serverName}": ${problem}`);
    this.routes.set(serverName.toLowerCase(), route);
  }

  delete(serverName: string): boolean {
    return this.routes.delete(serverName.toLowerCase());
  }

  lookup(serverName: string): Route | undefined {
    return this.routes.get(serverName.toLowerCase());
  }

  get size(): number {
    return this.routes.size;
  }
}
