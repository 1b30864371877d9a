// The outbound side: what the app calls. Each stage wraps the next (see docs/architecture.md):
//   server (accept: HTTP, CONNECT, upgrades, TCP listeners)
//   → logical (the authority's route: TrafficSplit backends by weight)
//   → concrete (the backend's balancer picks an endpoint; another is tried when connecting fails)
//   → endpoint (connect: pooled HTTP/2 mTLS to the endpoint's proxy, directly or through a
//     gateway, or plain HTTP/1.1 to an unmeshed one);
// opaq/ carries TCP through the same stages. This class builds them, listens and closes.
import type http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { listen } from '../../api/listen.js';
import type { OutboundListener } from '../config.js';
import type { ProxyMetrics } from '../metrics.js';
import { viaEntry } from '../transport/headers.js';
import { ConcreteHttp } from './concrete/http.js';
import type { MeshConnector } from './endpoint/connector.js';
import { HttpEndpoint } from './endpoint/http.js';
import { LogicalHttp } from './logical/http.js';
import type { RouteTable } from './logical/table.js';
import { TcpEndpoint } from './opaq/endpoint.js';
import { Tunnels } from './opaq/tunnel.js';
import { httpServer } from './server/http.js';
import { tcpServer } from './server/tcp.js';

export interface OutboundOptions {
  host: string;
  port: number;
  /** `<pod>.<namespace>.<cluster>`: names this proxy in Via headers, with the port. */
  proxyName: string;
  cluster: string;
  /** The port peers' proxies take mTLS on when discovery names none. */
  peerInboundPort: number;
  tcpListeners: OutboundListener[];
  routes: RouteTable;
  connector: MeshConnector;
  metrics: ProxyMetrics;
  log: Logger;
  /** How long a request waits for discovery's first answer about a name. */
  resolveTimeoutMs?: number;
  /** A client must send its request headers within this; idle and slow clients are cut off. */
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

export class OutboundProxy {
  private readonly server: http.Server;
  private readonly tcpServers: net.Server[];
  private readonly endpoint: HttpEndpoint;
  /** App connections that became tunnels (CONNECT, upgrades, TCP listeners): the HTTP server no longer tracks them. */
  private readonly tunnels = new Set<Duplex>();
  private readonly hop = { receivedBy: '', via: '' };

  constructor(private readonly o: OutboundOptions) {
    const { cluster, metrics, log } = o;
    const resolveTimeoutMs = o.resolveTimeoutMs ?? 5000;
    this.endpoint = new HttpEndpoint({ cluster, peerInboundPort: o.peerInboundPort, connector: o.connector, metrics, log, via: () => this.hop.via });
    const logical = new LogicalHttp(o.routes, resolveTimeoutMs, new ConcreteHttp(this.endpoint, log));
    const plainConnections = metrics.tcpSeries({ direction: 'outbound', peer: 'dst', tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery', src_cluster: cluster });
    const tunnels = new Tunnels({ routes: o.routes, endpoint: new TcpEndpoint(o.connector, metrics, o.peerInboundPort), resolveTimeoutMs, plainConnections, log });
    const appConnections = metrics.tcpSeries({ direction: 'outbound', peer: 'src', tls: 'no_identity', no_tls_reason: 'loopback', src_cluster: cluster });
    const adopt = (socket: Duplex) => this.adopt(socket);
    this.server = httpServer({
      cluster,
      logical,
      tunnels,
      metrics,
      log,
      hop: this.hop,
      adopt,
      appConnections,
      headersTimeoutMs: o.headersTimeoutMs ?? 10_000,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs ?? 60_000,
    });
    this.tcpServers = o.tcpListeners.map((l) => tcpServer(l.target, { tunnels, adopt, appConnections, log }));
  }

  async listen(): Promise<{ port: number; tcp: number[] }> {
    await listen(this.server, { port: this.o.port, host: this.o.host });
    const port = (this.server.address() as AddressInfo).port;
    this.hop.receivedBy = `${this.o.proxyName}:${port}`;
    this.hop.via = viaEntry(this.hop.receivedBy);
    const tcp: number[] = [];
    for (const [i, server] of this.tcpServers.entries()) {
      await listen(server, { port: this.o.tcpListeners[i]!.port, host: this.o.host });
      tcp.push((server.address() as AddressInfo).port);
    }
    return { port, tcp };
  }

  async close(): Promise<void> {
    const servers = [this.server, ...this.tcpServers];
    const closed = Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    this.server.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    this.endpoint.close();
    await closed;
  }

  /** Keeps `socket` (an app connection the HTTP server let go of) until it closes, to close it with the proxy. */
  private adopt(socket: Duplex): void {
    socket.on('error', () => socket.destroy());
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
  }
}
