// The server stage for explicit TCP listeners (`strait.dev/outbound: "6379=redis.default:6379"`):
// each connection becomes a tunnel to an endpoint of the listener's target.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { TcpSeries } from '../../metrics.js';
import { splice } from '../../transport/tunnel.js';
import type { Tunnels } from '../opaq/tunnel.js';

export function tcpServer(target: string, o: { tunnels: Tunnels; adopt(socket: Duplex): void; appConnections: TcpSeries; log: Logger }): net.Server {
  return net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
    o.appConnections.track(socket);
    o.adopt(socket);
    o.tunnels.open(target.toLowerCase()).then(
      (upstream) => splice(socket, upstream),
      (err: Error) => {
        o.log.info({ target, err: err.message }, 'outbound TCP connection refused');
        socket.destroy();
      },
    );
  });
}
