// Opaque TCP through the stages (CONNECT, upgrades, TCP listeners), as HTTP goes through them: the
// authority (host:port) names a route (logical), a balancer picks an endpoint and another is tried
// when connecting fails (concrete, the same attempt loop as HTTP), and the endpoint stage connects.
// An IP address or localhost is connected to directly.
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { TcpSeries } from '../../metrics.js';
import { splitAuthority } from '../../transport/headers.js';
import { Refusal } from '../call.js';
import { tryEndpoints } from '../concrete/attempts.js';
import type { RouteTable } from '../logical/table.js';
import { connectTcp, type TcpEndpoint } from './endpoint.js';

/** Names that skip discovery: an IP address or localhost is called directly, in plaintext. */
export function isDirectHost(host: string): boolean {
  return isIP(host) !== 0 || host === 'localhost';
}

export class Tunnels {
  constructor(
    private readonly o: { routes: RouteTable; endpoint: TcpEndpoint; resolveTimeoutMs: number; plainConnections: TcpSeries; log: Logger },
  ) {}

  /** A connection to an endpoint of `authority` (host:port, lower-cased); rejects with a Refusal. */
  async open(authority: string): Promise<Duplex> {
    const { host, port } = splitAuthority(authority);
    if (isDirectHost(host)) {
      try {
        const socket = await connectTcp(host, port ?? 80);
        this.o.plainConnections.track(socket);
        return socket;
      } catch (err) {
        throw new Refusal(502, `cannot connect to ${authority}: ${(err as Error).message}`);
      }
    }
    const route = this.o.routes.get(authority);
    await route.resolve(this.o.resolveTimeoutMs);
    return new Promise((resolve, reject) =>
      tryEndpoints(route, this.o.log, {
        attempt: (pick, retry) => {
          const startedAt = performance.now();
          void this.o.endpoint.open(pick).then((upstream) => {
            pick.connected();
            // A tunnel's round trip is its connect: the peer proxy answers once the app accepted.
            pick.finished(0, performance.now() - startedAt);
            resolve(upstream);
          }, retry);
        },
        giveUp: (status, message) => reject(new Refusal(status, message)),
      }),
    );
  }
}
