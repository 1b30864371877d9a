// The splice as a byte pipe: the ClientHello is replayed exactly, each direction ends on its own,
// 256 MiB cross both ways intact, a reader that stops stops the writer on the other side (the
// gateway does not buffer), idle connections are closed, and close() leaves no connection behind.
// The bytes after the hello need not be TLS: the gateway never reads past the ClientHello.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { endpointRouteKey, probeRouteKey } from '../../src/api/route-keys.js';
import { clientTlsOptions } from '../../src/identity/tls.js';
import { StaticRouteTable } from '../../src/gateway/routes.js';
import { clientHello, serverNameExtension } from '../unit/gateway/hellos.js';
import { eventually, GATEWAY_ID, meshIdentities, openTcpHandles, sha256, tcpUpstream, testGateway, type MeshIdentities, type TestGateway, type Upstream } from './gateway-harness.js';

const MiB = 1 << 20;
const HALF_CLOSE_KEY = endpointRouteKey('cluster1', 'sample', 'half-close-0');
const ECHO_KEY = endpointRouteKey('cluster1', 'sample', 'echo-0');
const FIREHOSE_KEY = endpointRouteKey('cluster1', 'sample', 'firehose-0');
const SILENT_KEY = endpointRouteKey('cluster1', 'sample', 'silent-0');

let ids: MeshIdentities;
let handlesBefore: number;
const upstreams: Upstream[] = [];
const routes = new StaticRouteTable();
let gateway: TestGateway;

/** What the echo upstream received, hashed, by connection. */
const echoed: string[] = [];
/** The firehose's progress: bytes the kernel took from it, and how much it offers in all. */
const firehose = { flushed: 0, total: 256 * MiB, done: false };

async function route(key: string, onConnection: (socket: net.Socket) => void): Promise<void> {
  const upstream = await tcpUpstream(onConnection);
  upstreams.push(upstream);
  routes.set(key, { kind: 'endpoint', host: '127.0.0.1', port: upstream.port });
}

before(async () => {
  handlesBefore = openTcpHandles();
  ids = await meshIdentities();
  // Waits for the client to finish sending, then answers with the hash of everything it got.
  await route(HALF_CLOSE_KEY, (socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => socket.end(`${sha256(...chunks)} ${Buffer.concat(chunks).length}`));
  });
  // Echoes every byte and hashes what it received.
  await route(ECHO_KEY, (socket) => {
    const hash = runningHash();
    socket.on('data', (c: Buffer) => hash.update(c));
    socket.on('end', () => echoed.push(hash.digest()));
    socket.pipe(socket);
  });
  // Writes as fast as the connection takes it, respecting back-pressure, counting what the kernel accepted.
  const block = randomBytes(MiB);
  await route(FIREHOSE_KEY, (socket) => {
    let offered = 0;
    const pump = () => {
      while (offered < firehose.total) {
        offered += block.length;
        const more = socket.write(block, () => (firehose.flushed += block.length));
        if (!more) return void socket.once('drain', pump);
      }
      socket.end(() => (firehose.done = true));
    };
    socket.once('data', pump);
  });
  await route(SILENT_KEY, () => {});
  gateway = await testGateway({ cluster: 'cluster1', identity: ids.gateway, routes, idleTimeoutMs: 500 });
});

after(async () => {
  await gateway.close();
  await Promise.all(upstreams.map((u) => u.close()));
  await eventually(() => assert.equal(openTcpHandles(), handlesBefore, 'every socket is closed'));
});

/** A SHA-256 and a byte count, fed chunk by chunk. */
function runningHash() {
  const hash = createHash('sha256');
  let size = 0;
  return {
    update(chunk: Buffer) {
      hash.update(chunk);
      size += chunk.length;
    },
    digest: () => `${hash.digest('hex')} ${size}`,
  };
}

function connect(allowHalfOpen = false): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: gateway.address.port, allowHalfOpen }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: net.Socket | tls.TLSSocket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

test('half-close: the client ends its side first and still gets the whole answer; the hello arrives exactly as sent', async () => {
  const hello = clientHello([serverNameExtension(HALF_CLOSE_KEY)]);
  const payload = randomBytes(3 * MiB + 17);
  const socket = await connect(true);
  const received: Buffer[] = [];
  socket.on('data', (c: Buffer) => received.push(c));
  const ended = new Promise<void>((resolve) => socket.once('end', resolve));
  socket.write(hello);
  socket.end(payload);
  await ended;
  assert.equal(Buffer.concat(received).toString(), `${sha256(hello, payload)} ${hello.length + payload.length}`);
  await closed(socket);
});

test('256 MiB through the gateway and back, intact: the same hash at the client, the upstream and the client again', async () => {
  const hello = clientHello([serverNameExtension(ECHO_KEY)]);
  const socket = await connect();
  const sent = runningHash();
  const back = runningHash();
  socket.on('data', (c: Buffer) => back.update(c));
  const ended = new Promise<void>((resolve) => socket.once('end', resolve));
  const write = (chunk: Buffer) => {
    sent.update(chunk);
    return socket.write(chunk) ? Promise.resolve() : new Promise<void>((resolve) => socket.once('drain', resolve));
  };
  await write(hello);
  for (let i = 0; i < 256; i++) await write(randomBytes(MiB));
  socket.end();
  await ended;
  await eventually(() => assert.equal(echoed.length, 1));
  const expected = sent.digest();
  assert.equal(echoed[0], expected, 'the upstream got every byte in order');
  assert.equal(back.digest(), expected, 'every byte came back in order');
  await closed(socket);
  await eventually(() => {
    const stats = gateway.stats().endpoint;
    assert.ok(stats.bytesFromClients >= 256 * MiB && stats.bytesToClients >= 256 * MiB, JSON.stringify(stats));
  });
});

test('back-pressure: a client that stops reading stops the upstream too, and the gateway holds only what sockets buffer', async () => {
  const socket = await connect();
  socket.pause();
  socket.write(clientHello([serverNameExtension(FIREHOSE_KEY)]));
  // Wait until the upstream can hand no more to the kernel.
  for (let last = -1; firehose.flushed !== last; ) {
    last = firehose.flushed;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  const stalledAt = firehose.flushed;
  assert.ok(stalledAt < firehose.total / 4, `the upstream got only ${stalledAt / MiB} MiB out of ${firehose.total / MiB} MiB into a stalled path`);
  let received = 0;
  socket.on('data', (c: Buffer) => (received += c.length));
  socket.resume();
  socket.end();
  await closed(socket);
  assert.equal(received, firehose.total, 'once the client reads again, everything arrives');
  assert.ok(firehose.done);
});

test('idle connections are closed after the idle time; busy ones are not', async () => {
  const idleBefore = gateway.stats().endpoint.idleTimeouts;
  const busy = await connect();
  busy.write(clientHello([serverNameExtension(SILENT_KEY)]));
  const quiet = await connect();
  quiet.write(clientHello([serverNameExtension(SILENT_KEY)]));
  const ticker = setInterval(() => busy.write('.'), 50);
  try {
    await closed(quiet);
    await eventually(() => assert.equal(gateway.stats().endpoint.idleTimeouts, idleBefore + 1));
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(busy.destroyed, false, 'a connection with traffic stays open past the idle time');
  } finally {
    clearInterval(ticker);
  }
  await closed(busy);
  assert.equal(gateway.stats().endpoint.idleTimeouts, idleBefore + 2);
});

test('close() ends spliced, pending and probe connections alike', async () => {
  const spliced = await connect();
  spliced.write(clientHello([serverNameExtension(SILENT_KEY)]));
  const pending = await connect();
  pending.write(clientHello([serverNameExtension(SILENT_KEY)]).subarray(0, 10));
  routes.set(probeRouteKey('cluster1'), { kind: 'probe' });
  const probe = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const options = clientTlsOptions(ids.sleep, GATEWAY_ID, { servername: probeRouteKey('cluster1'), alpn: ['http/1.1'] });
    const socket = tls.connect({ ...options, host: '127.0.0.1', port: gateway.address.port }, () => resolve(socket));
    socket.once('error', reject);
  });
  await eventually(() => {
    const s = gateway.stats();
    assert.deepEqual([s.pending, s.endpoint.active, s.probe.active], [1, 1, 1]);
  });
  const all = Promise.all([closed(spliced), closed(pending), closed(probe)]);
  await gateway.close();
  await all;
  const s = gateway.stats();
  assert.deepEqual([s.pending, s.endpoint.active, s.probe.active], [0, 0, 0]);
});
