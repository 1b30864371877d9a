// The benchmark's server side, in its own process: for mTLS and for raw TCP, one port that counts
// and drops every byte (throughput) and one that echoes (round trips).
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { serverTlsOptions, type TlsMaterial } from '../../src/identity/tls.js';
import { staticIdentity } from '../../test/unit/identity/fixtures.js';
import { serve } from './ipc.js';

export interface SinkPorts {
  tlsCount: number;
  tlsEcho: number;
  rawCount: number;
  rawEcho: number;
}

let received = 0;
const servers: net.Server[] = [];

function count(socket: net.Socket): void {
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('error', () => socket.destroy());
}

function echo(socket: net.Socket): void {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
}

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

serve(async (message) => {
  switch (message.op) {
    case 'start': {
      const options = { ...serverTlsOptions(staticIdentity(message.material as TlsMaterial), { clientCert: 'require', alpn: ['strait-tcp'] }), noDelay: true };
      const ports: SinkPorts = {
        tlsCount: await listen(tls.createServer(options, count)),
        tlsEcho: await listen(tls.createServer(options, echo)),
        rawCount: await listen(net.createServer({ noDelay: true }, count)),
        rawEcho: await listen(net.createServer({ noDelay: true }, echo)),
      };
      return { ports };
    }
    case 'bytes':
      return { bytes: received };
    default:
      throw new Error(`unknown op ${String(message.op)}`);
  }
});
