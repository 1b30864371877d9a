// Opaque TCP through the mesh: CONNECT on the forward proxy, an explicit outbound listener (as the
// `strait.dev/outbound` annotation asks for), and a WebSocket upgrade. Each crosses the same mTLS
// hop between proxies (ALPN strait-tcp) and reaches an app port on the server pod.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { eventually, metric, scrape, service, spiffe, startApp, startProxy, TestPki, TestResolver, type TestApp, type TestProxy } from './proxy-harness.js';

const NET = '127.93.4';

/** Reads from `socket` until `text` has arrived; resolves with everything read so far. */
function readUntil(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes(text)) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before "${text}"; got ${JSON.stringify(got)}`)));
  });
}

async function connect(host: string, port: number): Promise<net.Socket> {
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  return socket;
}

describe('proxy opaque TCP: CONNECT, explicit listeners, WebSocket', { timeout: 30_000 }, () => {
  let resolver: TestResolver;
  let client: TestProxy;
  let server: TestProxy;
  let echo: net.Server;
  let echoPort: number;
  const echoSockets = new Set<net.Socket>();
  let web: TestApp;
  let upgradeHeaders: http.IncomingHttpHeaders | undefined;

  before(async () => {
    const pki = await TestPki.create();
    resolver = new TestResolver();
    // A server-first TCP app (it greets, like SMTP or MySQL), then echoes.
    echo = net.createServer((socket) => {
      echoSockets.add(socket);
      socket.once('close', () => echoSockets.delete(socket));
      socket.write('+READY\r\n');
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, `${NET}.2`, resolve));
    echoPort = (echo.address() as AddressInfo).port;
    // A WebSocket-style app: it switches protocols, then echoes the bytes it gets.
    web = await startApp(`${NET}.2`, (_req, res) => res.end('plain http'));
    web.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      upgradeHeaders = req.headers;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
    });
    server = await startProxy({ ip: `${NET}.2`, pod: 'redis-0', identity: await pki.identity('redis'), resolver });
    for (const name of ['redis', 'redis.sample']) resolver.set(name, service('redis', [server.endpoint(echoPort, spiffe('redis'))]));
    resolver.set('chat', service('chat', [server.endpoint(web.port, spiffe('redis'))]));
    resolver.set('closed', service('closed', [server.endpoint(1, spiffe('redis'))]));
    client = await startProxy({
      ip: `${NET}.1`,
      pod: 'sleep-7b9c8d6f5-vwxyz',
      identity: await pki.identity('sleep'),
      resolver,
      outboundListeners: [{ port: 0, target: `redis.sample:${echoPort}` }],
    });
  });
  after(async () => {
    await client.close();
    await server.close();
    for (const s of echoSockets) s.destroy();
    await new Promise((resolve) => echo.close(resolve));
    await web.close();
  });

  it('tunnels CONNECT to a TCP service over mTLS, server-first greeting included', async () => {
    const socket = await connect(client.ip, client.ports.outbound);
    socket.write(`CONNECT redis:${echoPort} HTTP/1.1\r\nHost: redis:${echoPort}\r\n\r\n`);
    const greeting = await readUntil(socket, '+READY\r\n');
    assert.match(greeting, /^HTTP\/1\.1 200 Connection Established\r\n\r\n\+READY\r\n$/);
    socket.write('PING\r\n');
    assert.equal(await readUntil(socket, 'PING\r\n'), 'PING\r\n');
    socket.end();
    await once(socket, 'close');
  });

  it('carries an explicit outbound TCP listener to its target', async () => {
    const socket = await connect(client.ip, client.ports.tcp[0]!);
    assert.equal(await readUntil(socket, '+READY\r\n'), '+READY\r\n');
    socket.write('hello over the listener\n');
    assert.equal(await readUntil(socket, 'listener\n'), 'hello over the listener\n');
    socket.destroy();
  });

  it('upgrades to WebSocket through the opaque path, with Host, Upgrade and Via intact', async () => {
    const socket = await connect(client.ip, client.ports.outbound);
    socket.write(
      'GET http://chat:8080/socket HTTP/1.1\r\nHost: chat:8080\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const switched = await readUntil(socket, '\r\n\r\n');
    assert.match(switched, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    socket.write('frame bytes');
    assert.equal(await readUntil(socket, 'frame bytes'), 'frame bytes');
    assert.equal(upgradeHeaders?.host, 'chat:8080');
    assert.equal(upgradeHeaders?.upgrade, 'websocket');
    assert.equal(upgradeHeaders?.['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
    assert.match(String(upgradeHeaders?.via), new RegExp(`^1\\.1 ${client.pod}\\.sample\\.cluster1:${client.ports.outbound} \\(strait\\)$`));
    socket.destroy();
  });

  it('answers CONNECT to an unknown service with 503 and to a closed app port with 502', async () => {
    const unknown = await connect(client.ip, client.ports.outbound);
    unknown.write('CONNECT nowhere:6379 HTTP/1.1\r\nHost: nowhere:6379\r\n\r\n');
    assert.match(await readUntil(unknown, 'no such service'), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    const refused = await connect(client.ip, client.ports.outbound);
    refused.write('CONNECT closed:1 HTTP/1.1\r\nHost: closed:1\r\n\r\n');
    const answer = await readUntil(refused, 'cannot connect to the app on port 1');
    assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  });

  it('counts the tunnels in both proxies’ metrics, with identities, and closes them all', async () => {
    const clientText = await scrape(client);
    assert.ok(metric(clientText, 'tcp_open_total', { direction: 'outbound', peer: 'dst', tls: 'true', server_id: spiffe('redis'), dst_service: 'redis' }) >= 2);
    assert.ok(metric(await scrape(server), 'tcp_open_total', { direction: 'inbound', peer: 'src', tls: 'true', client_id: spiffe('sleep') }) >= 3);
    await eventually(async () => {
      assert.equal(metric(await scrape(client), 'tcp_open_connections', { direction: 'outbound' }), 0);
      assert.equal(metric(await scrape(server), 'tcp_open_connections', { direction: 'inbound' }), 0);
      assert.equal(echoSockets.size, 0);
      assert.equal(web.connections(), 0);
    }, 8000);
  });
});
