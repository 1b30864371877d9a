// The benchmark's client side, in its own process: streams to the counting sink over N connections
// for as long as the driver measures, or times sequential small round trips to the echo sink. The
// same code connects directly or through the gateway; only the port differs (the SNI is the same).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { clientTlsOptions, type TlsMaterial } from '../../src/identity/tls.js';
import { staticIdentity } from '../../test/unit/identity/fixtures.js';
import { clientHello, serverNameExtension } from '../../test/unit/gateway/hellos.js';
import { serve } from './ipc.js';

export type Mode = 'tls' | 'raw';

export interface Target {
  mode: Mode;
  port: number;
  servername: string;
  material: TlsMaterial;
  /** The sink's SPIFFE ID, checked in TLS mode. */
  expected: string;
}

const CHUNK = randomBytes(64 * 1024);
let streaming: net.Socket[] = [];

/**
 * A connection to the target. In raw mode the client sends a real-looking ClientHello first (the
 * gateway routes by it) and then plain bytes; `echoed` says the sink will send the hello back.
 */
async function open(target: Target, echoed: boolean): Promise<net.Socket> {
  if (target.mode === 'tls') {
    const options = clientTlsOptions(staticIdentity(target.material), target.expected, { servername: target.servername, alpn: ['strait-tcp'] });
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ ...options, host: '127.0.0.1', port: target.port }, () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    return socket;
  }
  const hello = clientHello([serverNameExtension(target.servername)]);
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: target.port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
  socket.write(hello);
  if (echoed) await readExactly(socket, hello.length);
  return socket;
}

/** Resolves once `length` more bytes have arrived on `socket`. */
function readExactly(socket: net.Socket, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got < length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function pump(socket: net.Socket): void {
  while (!socket.destroyed) {
    if (!socket.write(CHUNK)) return void socket.once('drain', () => pump(socket));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

serve(async (message) => {
  const target = message.target as Target;
  switch (message.op) {
    case 'stream': {
      streaming = await Promise.all(Array.from({ length: message.streams as number }, () => open(target, false)));
      for (const socket of streaming) {
        socket.on('error', () => socket.destroy());
        pump(socket);
      }
      return {};
    }
    case 'stop': {
      for (const socket of streaming) socket.destroy();
      streaming = [];
      return {};
    }
    case 'rtt': {
      const size = message.size as number;
      const socket = await open(target, true);
      const request = randomBytes(size);
      const latencies: number[] = [];
      const total = (message.warmup as number) + (message.iterations as number);
      for (let i = 0; i < total; i++) {
        const started = process.hrtime.bigint();
        const answered = readExactly(socket, size);
        socket.write(request);
        await answered;
        if (i >= (message.warmup as number)) latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
      socket.destroy();
      latencies.sort((a, b) => a - b);
      return { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), count: latencies.length };
    }
    default:
      throw new Error(`unknown op ${String(message.op)}`);
  }
});
