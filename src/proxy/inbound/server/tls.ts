// The inbound side's server stage: mTLS from other proxies. Clients must present a certificate that
// chains to the trust bundle (plaintext and foreign-root clients fail the handshake, which is
// logged and counted). ALPN picks the next stage: `h2` streams go to the HTTP stage (../http),
// restored to HTTP/1.1 for the app; `strait-tcp` is an opaque tunnel to an app port (../opaq).
// The client's SPIFFE ID and cluster label the metrics.
import http2, { type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { listen } from '../../../api/listen.js';
import { peerSpiffeId, type TlsIdentity } from '../../../identity/tls.js';
import type { ProxyMetrics, TcpSeries } from '../../metrics.js';
import { MESH_H2_SESSION_WINDOW, MESH_H2_SETTINGS } from '../../transport/h2.js';
import { viaEntry } from '../../transport/headers.js';
import { HTTP_ALPN, peerServer } from '../../transport/tls.js';
import { TUNNEL_ALPN } from '../../transport/tunnel.js';
import { AppClient } from '../http/app.js';
import { HttpInbound, type Peer } from '../http/stream.js';
import { acceptTunnel } from '../opaq/tunnel.js';

export interface InboundOptions {
  /** The pod's address: the listener binds to it and the app is called on it. */
  host: string;
  port: number;
  proxyName: string;
  cluster: string;
  identity: TlsIdentity;
  metrics: ProxyMetrics;
  log: Logger;
  /** The proxy's own ports: a request for one of them is refused (it would loop through the proxy). */
  reservedPorts: () => readonly number[];
  handshakeTimeoutMs?: number;
}

export class InboundProxy {
  private readonly server: tls.Server;
  private readonly h2: http2.Http2Server;
  private readonly peers = new WeakMap<Http2Session, Peer>();
  private readonly sockets = new Set<TLSSocket>();
  private readonly app: AppClient;
  private readonly appConnections: TcpSeries;
  private readonly handshakeTimeoutMs: number;
  private readonly hop = { receivedBy: '', via: '' };
  private connecting: Peer | undefined;

  constructor(private readonly o: InboundOptions) {
    this.handshakeTimeoutMs = o.handshakeTimeoutMs ?? 10_000;
    this.server = peerServer(o.identity, this.handshakeTimeoutMs);
    this.appConnections = o.metrics.tcpSeries({ direction: 'inbound', peer: 'dst', tls: 'no_identity', no_tls_reason: 'loopback', dst_cluster: o.cluster });
    this.app = new AppClient(o.host, this.appConnections);
    const http = new HttpInbound({ cluster: o.cluster, metrics: o.metrics, app: this.app, reservedPorts: o.reservedPorts, hop: this.hop, warn: (fields, message) => o.log.warn(fields, message) });
    this.h2 = http2.createServer({ settings: MESH_H2_SETTINGS });
    this.h2.on('session', (session: ServerHttp2Session) => {
      // Sessions are made synchronously from the 'connection' this proxy emits, so this is its peer.
      if (this.connecting) this.peers.set(session, this.connecting);
      session.setLocalWindowSize(MESH_H2_SESSION_WINDOW);
      session.on('error', () => session.destroy());
    });
    this.h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => http.onStream(stream, headers, this.peers.get(stream.session!)));
    this.h2.on('sessionError', () => {});
    this.server.on('secureConnection', (socket: TLSSocket) => this.onConnection(socket));
    this.server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.o.metrics.tcpError('inbound', 'tls_handshake');
      this.o.log.warn({ client: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'refused a client that did not complete mTLS');
    });
  }

  async listen(): Promise<number> {
    await listen(this.server, { port: this.o.port, host: this.o.host });
    const port = (this.server.address() as AddressInfo).port;
    this.hop.receivedBy = `${this.o.proxyName}:${port}`;
    this.hop.via = viaEntry(this.hop.receivedBy);
    return port;
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await this.app.close();
  }

  private onConnection(socket: TLSSocket): void {
    const clientId = peerSpiffeId(socket);
    if (clientId === undefined) {
      // With client certificates required this cannot happen; refuse rather than trust it.
      this.o.log.warn({ client: socket.remoteAddress }, 'refused a client without a SPIFFE ID');
      return void socket.destroy();
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    this.o.metrics.tcpSeries({ direction: 'inbound', peer: 'src', tls: 'true', client_id: clientId, dst_cluster: this.o.cluster }).track(socket);
    if (socket.alpnProtocol === TUNNEL_ALPN) {
      const { host, reservedPorts, log } = this.o;
      return acceptTunnel(socket, clientId, { host, reservedPorts, appConnections: this.appConnections, handshakeTimeoutMs: this.handshakeTimeoutMs, log });
    }
    if (socket.alpnProtocol !== HTTP_ALPN) return void socket.destroy();
    this.connecting = { clientId, series: new Map() };
    this.h2.emit('connection', socket);
    this.connecting = undefined;
  }
}
