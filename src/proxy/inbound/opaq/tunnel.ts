// The inbound opaque stage: a tunnel from a client proxy. Read the header naming the app port,
// connect to the app, confirm, then splice the two connections.
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TcpSeries } from '../../metrics.js';
import { encodeLine, parseTunnelRequest, readLine, splice } from '../../transport/tunnel.js';

export interface TunnelInboundOptions {
  /** The pod's address. */
  host: string;
  reservedPorts: () => readonly number[];
  appConnections: TcpSeries;
  handshakeTimeoutMs: number;
  log: Logger;
}

export function acceptTunnel(socket: TLSSocket, clientId: string, o: TunnelInboundOptions): void {
  readLine(socket, o.handshakeTimeoutMs).then(
    (line) => {
      const request = parseTunnelRequest(line);
      if (typeof request === 'string') return refuseTunnel(socket, request);
      if (o.reservedPorts().includes(request.port)) return refuseTunnel(socket, `port ${request.port} belongs to the proxy, not the app`);
      const app = net.connect({ host: o.host, port: request.port, noDelay: true });
      o.appConnections.track(app);
      app.once('connect', () => {
        app.removeAllListeners('error');
        socket.write(encodeLine({ ok: true }));
        splice(socket, app);
      });
      app.once('error', (err) => {
        o.log.info({ client: clientId, port: request.port, err: err.message }, 'tunnel to the app failed');
        refuseTunnel(socket, `cannot connect to the app on port ${request.port}: ${err.message}`);
      });
    },
    (err: Error) => refuseTunnel(socket, err.message),
  );
}

function refuseTunnel(socket: TLSSocket, reason: string): void {
  if (socket.writable) socket.end(encodeLine({ error: reason }));
  else socket.destroy();
}
