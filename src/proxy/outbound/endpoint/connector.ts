// The client side of proxy-to-proxy connections: mTLS to a server proxy (directly, or through a
// gateway by SNI) that must present the SPIFFE ID discovery promised. HTTP goes over one pooled,
// long-lived HTTP/2 session per peer; a session that gets GOAWAY or fails leaves the pool and the
// next request opens a new one. Opaque TCP gets a connection of its own (ALPN `strait-tcp`).
import http2, { type ClientHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsIdentity } from '../../../identity/tls.js';
import type { MetricLabels, ProxyMetrics } from '../../metrics.js';
import { MESH_H2_SESSION_WINDOW, MESH_H2_SETTINGS } from '../../transport/h2.js';
import { dialPeer, HTTP_ALPN } from '../../transport/tls.js';
import { encodeLine, parseTunnelReply, readLine, TUNNEL_ALPN } from '../../transport/tunnel.js';
import { ConnectFailed, describeTarget as describe, type MeshTarget } from './target.js';

export interface ConnectorOptions {
  identity: TlsIdentity;
  metrics: ProxyMetrics;
  log: Logger;
  /** This proxy's cluster, sent to the server's proxy. */
  cluster: string;
  connectTimeoutMs?: number;
}

interface PooledSession {
  target: MeshTarget;
  session: ClientHttp2Session;
  /** Settles when the TLS handshake (with the identity check) and the HTTP/2 preface are done. */
  connected: Promise<ClientHttp2Session>;
  isConnected: boolean;
}

export class MeshConnector {
  private readonly pool = new Map<string, PooledSession>();
  private readonly tunnels = new Set<TLSSocket>();
  private readonly connectTimeoutMs: number;

  constructor(private readonly options: ConnectorOptions) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  }

  /** The pooled session to `target` if it is connected now; callers then skip a promise per request. */
  connectedSession(target: MeshTarget): ClientHttp2Session | undefined {
    const pooled = this.pool.get(target.key);
    return pooled?.isConnected && !pooled.session.closed && !pooled.session.destroyed ? pooled.session : undefined;
  }

  /** The pooled session to `target`, connecting first if needed; rejects with ConnectFailed. */
  session(target: MeshTarget, labels: MetricLabels): Promise<ClientHttp2Session> {
    const pooled = this.pool.get(target.key);
    if (pooled && !pooled.session.closed && !pooled.session.destroyed) return pooled.connected;
    return this.connect(target, labels).connected;
  }

  /** Takes `session` out of the pool (it failed a request); requests already on it carry on. */
  discard(session: ClientHttp2Session): void {
    for (const [key, pooled] of this.pool) if (pooled.session === session) this.pool.delete(key);
  }

  private connect(target: MeshTarget, labels: MetricLabels): PooledSession {
    const socket = dialPeer(this.options.identity, target, HTTP_ALPN);
    const reached = tcpConnected(socket);
    this.options.metrics.tcpSeries(labels).track(socket);
    const session = http2.connect(`http://${target.host}:${target.port}`, {
      createConnection: () => socket,
      settings: MESH_H2_SETTINGS,
    });
    const pooled: PooledSession = { target, session, isConnected: false, connected: undefined as unknown as Promise<ClientHttp2Session> };
    pooled.connected = new Promise((resolve, reject) => {
      const timer = setTimeout(() => session.destroy(new Error(`no TLS handshake within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      session.once('connect', () => {
        clearTimeout(timer);
        pooled.isConnected = true;
        session.setLocalWindowSize(MESH_H2_SESSION_WINDOW);
        resolve(session);
      });
      session.once('close', () => {
        clearTimeout(timer);
        reject(new ConnectFailed(`the connection to ${describe(target)} closed during the handshake`, !reached()));
      });
      session.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(this.connectError(target, err, reached()));
      });
    });
    pooled.connected.catch(() => {}); // callers observe it; an unobserved failure is not an error
    const leave = () => {
      if (this.pool.get(target.key) === pooled) this.pool.delete(target.key);
    };
    session.on('error', (err: Error) => {
      leave();
      if (pooled.isConnected) this.options.log.info({ peer: describe(target), err: err.message }, 'mesh session failed');
    });
    session.on('goaway', leave);
    session.on('close', leave);
    this.pool.set(target.key, pooled);
    return pooled;
  }

  /** Opens an opaque TCP tunnel to `appPort` on the target's pod; resolves once the peer accepted it. */
  async tunnel(target: MeshTarget, appPort: number, labels: MetricLabels): Promise<TLSSocket> {
    const socket = dialPeer(this.options.identity, target, TUNNEL_ALPN);
    const reached = tcpConnected(socket);
    this.options.metrics.tcpSeries(labels).track(socket);
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no TLS handshake within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
        socket.once('secureConnect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (err: Error) => {
          clearTimeout(timer);
          reject(err);
        });
      });
    } catch (err) {
      socket.destroy();
      throw this.connectError(target, err as Error, reached());
    }
    socket.write(encodeLine({ port: appPort, cluster: this.options.cluster }));
    let reply;
    try {
      reply = parseTunnelReply(await readLine(socket, this.connectTimeoutMs));
    } catch (err) {
      socket.destroy();
      throw new ConnectFailed(`${describe(target)} did not accept the tunnel: ${(err as Error).message}`);
    }
    if ('error' in reply) {
      socket.destroy();
      throw new ConnectFailed(`${describe(target)} refused the tunnel to port ${appPort}: ${reply.error}`);
    }
    return socket;
  }

  /** A connect failure as ConnectFailed; a peer with the wrong identity is logged and counted. */
  private connectError(target: MeshTarget, err: Error, reached: boolean): ConnectFailed {
    if (err.name === 'PeerRejected') {
      this.options.metrics.tcpError('outbound', 'peer_identity');
      this.options.log.warn({ peer: describe(target), expected: target.identity, err: err.message }, 'refused a peer proxy with the wrong identity');
      return new ConnectFailed(`${describe(target)} is not ${target.identity}: ${err.message}`);
    }
    this.options.metrics.tcpError('outbound', 'connect');
    return new ConnectFailed(`cannot connect to ${describe(target)}: ${err.message}`, !reached);
  }

  snapshot(): { peer: string; identity: string; connected: boolean }[] {
    return [...this.pool.values()].map((p) => ({ peer: describe(p.target), identity: p.target.identity, connected: p.isConnected }));
  }

  close(): void {
    for (const pooled of this.pool.values()) pooled.session.destroy();
    this.pool.clear();
    for (const socket of this.tunnels) socket.destroy();
  }
}

/** Whether the socket's TCP connection was made (before TLS), as of each call. */
function tcpConnected(socket: TLSSocket): () => boolean {
  let connected = false;
  socket.once('connect', () => (connected = true));
  return () => connected;
}
