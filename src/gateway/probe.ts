// The gateway's own endpoint, the one connection kind it terminates: a linked cluster's link
// controller opens TLS with the probe route key, proves it is a mesh member (a client certificate
// chaining to the trust bundle), and asks `GET /ready`; the answer names this cluster, and the time
// it takes is the link's latency. HTTP/1.1 with keep-alive, so a controller can probe over one
// connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Logger } from 'pino';
import { followRotation, serverTlsOptions, type TlsIdentity } from '../identity/tls.js';

export const PROBE_PATH = '/ready';
export const PROBE_ALPN = 'http/1.1';
/** A probe connection that sends nothing this long is closed (Node checks header time-outs only on listening servers). */
const PROBE_IDLE_TIMEOUT_MS = 30_000;

/** What `GET /ready` answers. */
export interface ProbeAnswer {
  cluster: string;
  ready: true;
}

export interface ProbeStats {
  connections: number;
  active: number;
  requests: number;
  /** Clients that failed the TLS handshake: no certificate, a foreign anchor, no common ALPN, too slow. */
  handshakeFailures: number;
}

export class GatewayProbe {
  private readonly server: https.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly stopFollowing: () => void;
  private readonly counters = { connections: 0, requests: 0, handshakeFailures: 0 };

  constructor(
    private readonly cluster: string,
    identity: TlsIdentity,
    private readonly log: Logger,
    handshakeTimeoutMs: number,
  ) {
    this.server = https.createServer(
      { ...serverTlsOptions(identity, { clientCert: 'require', alpn: [PROBE_ALPN] }), handshakeTimeout: handshakeTimeoutMs },
      (req, res) => this.answer(req, res),
    );
    this.server.setTimeout(PROBE_IDLE_TIMEOUT_MS);
    this.server.on('tlsClientError', (err, tlsSocket) => {
      this.counters.handshakeFailures++;
      this.log.warn({ peer: tlsSocket.remoteAddress, err: err.message }, 'probe: TLS handshake failed');
    });
    this.stopFollowing = followRotation(this.server, identity);
  }

  /** Terminates TLS on `socket`, whose first bytes (the ClientHello) were already read as `received`. */
  accept(socket: net.Socket, received: Buffer): void {
    this.counters.connections++;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.unshift(received);
    this.server.emit('connection', socket);
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++;
    const path = (req.url ?? '').split('?')[0];
    if (path !== PROBE_PATH) return json(res, 404, { error: `no such path ${path}; the gateway answers only GET ${PROBE_PATH}` });
    if (req.method !== 'GET') return json(res, 405, { error: `${req.method} is not allowed; use GET` }, { allow: 'GET' });
    const answer: ProbeAnswer = { cluster: this.cluster, ready: true };
    json(res, 200, answer);
  }

  stats(): ProbeStats {
    return { ...this.counters, active: this.sockets.size };
  }

  close(): void {
    this.stopFollowing();
    for (const socket of this.sockets) socket.destroy();
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}
