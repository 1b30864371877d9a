// Bad input never takes a proxy down or leaks: malformed and oversized requests get a clean status,
// idle and slow clients are cut off, a dying app is a 502 and a failure in the metrics, peers that
// cannot prove the right identity are refused (and logged), and a loop is caught.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import type { TlsIdentity } from '../../src/identity/tls.js';
import { eventually, metric, scrape, service, spiffe, startMesh, TestPki, viaProxy, type Mesh } from './proxy-harness.js';

const NET = '127.93.2';
const HEADERS_TIMEOUT_MS = 600;

function app(req: IncomingMessage, res: ServerResponse): void {
  switch (req.url) {
    case '/close-before-headers':
      return void req.socket.destroy();
    case '/close-mid-body':
      res.writeHead(200, { 'content-length': 1000 });
      res.write('the first part');
      return void setTimeout(() => req.socket.destroy(), 20);
    default:
      res.end('fine');
  }
}

/** Sends raw bytes to host:port; resolves with everything read until the other side closes. */
async function raw(host: string, port: number, bytes: string): Promise<string> {
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  socket.write(bytes);
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  await once(socket, 'close');
  return text;
}

/** Like a client with a truncated answer sees it: the status, and whether the body ended cleanly. */
function fetchOutcome(host: string, port: number, path: string): Promise<{ status: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path, agent: false }, (res) => {
        res.on('data', () => {});
        res.on('error', () => {});
        res.once('close', () => resolve({ status: res.statusCode ?? 0, complete: res.complete }));
      })
      .on('error', reject);
  });
}

/** A TLS client to the inbound port that speaks first; resolves with whether anything came back. */
async function tlsClient(host: string, port: number, options: tls.ConnectionOptions): Promise<{ answered: boolean }> {
  const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...options });
  let answered = false;
  socket.on('data', () => (answered = true));
  socket.on('error', () => {}); // the refusal arrives as a TLS alert
  socket.on('secureConnect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  await new Promise((resolve) => socket.once('close', resolve));
  return { answered };
}

describe('proxy robustness against bad input', { timeout: 30_000 }, () => {
  let mesh: Mesh;
  let foreign: TlsIdentity;

  before(async () => {
    mesh = await startMesh(NET, app, { headersTimeoutMs: HEADERS_TIMEOUT_MS });
    foreign = await (await TestPki.create()).identity('sleep');
  });
  after(() => mesh.close());

  it('answers a malformed request line with 400 and keeps serving', async () => {
    const answer = await raw(mesh.client.ip, mesh.client.ports.outbound, 'GARBAGE\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(answer, /malformed request/);
    const control = await raw(mesh.client.ip, mesh.client.ports.outbound, 'GET /\u0001 HTTP/1.1\r\nHost: helloworld:5000\r\n\r\n');
    assert.match(control, /^HTTP\/1\.1 400 /);
    assert.equal((await viaProxy(mesh.client, 'http://helloworld:5000/')).body, 'fine');
  });

  it('answers headers over 64 KiB with 431', async () => {
    const answer = await raw(mesh.client.ip, mesh.client.ports.outbound, `GET http://helloworld:5000/ HTTP/1.1\r\nHost: helloworld:5000\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  });

  it('cuts off a client that sends nothing, and one that sends a byte at a time', async () => {
    const started = Date.now();
    const idle = net.connect({ host: mesh.client.ip, port: mesh.client.ports.outbound });
    const slow = net.connect({ host: mesh.client.ip, port: mesh.client.ports.outbound });
    idle.resume(); // read, so that the proxy's close is seen
    const request = 'GET http://helloworld:5000/ HTTP/1.1\r\nHost: helloworld:5000\r\n';
    let sent = 0;
    const drip = setInterval(() => slow.writable && slow.write(request[sent++ % request.length]!), 100);
    let slowAnswer = '';
    slow.on('data', (d: Buffer) => (slowAnswer += d.toString()));
    await Promise.all([once(idle, 'close'), once(slow, 'close')]);
    clearInterval(drip);
    const took = Date.now() - started;
    assert.ok(took >= HEADERS_TIMEOUT_MS && took < HEADERS_TIMEOUT_MS + 3000, `closed after ${took} ms`);
    assert.match(slowAnswer, /^HTTP\/1\.1 408 /);
    await eventually(async () => assert.equal(metric(await scrape(mesh.client), 'tcp_open_connections', { direction: 'outbound', peer: 'src' }), 0));
  });

  it('answers 502 when the app closes before answering, and counts a failure on both sides', async () => {
    const answer = await viaProxy(mesh.client, 'http://helloworld:5000/close-before-headers');
    assert.equal(answer.status, 502);
    assert.match(answer.body, /the app on port \d+ failed before answering/);
    const failed = { status_code: '502', classification: 'failure' };
    assert.ok(metric(await scrape(mesh.client), 'response_total', { direction: 'outbound', dst_service: 'helloworld', ...failed }) >= 1);
    assert.ok(metric(await scrape(mesh.server), 'response_total', { direction: 'inbound', ...failed }) >= 1);
  });

  it('cuts the answer short when the app dies mid-body, and counts a failure', async () => {
    const outcome = await fetchOutcome(mesh.client.ip, mesh.client.ports.outbound, 'http://helloworld:5000/close-mid-body');
    assert.deepEqual(outcome, { status: 200, complete: false });
    await eventually(async () => {
      assert.ok(metric(await scrape(mesh.client), 'response_total', { direction: 'outbound', status_code: '200', classification: 'failure' }) >= 1);
      assert.ok(metric(await scrape(mesh.server), 'response_total', { direction: 'inbound', status_code: '200', classification: 'failure' }) >= 1);
    });
  });

  it('refuses a server proxy that is not the identity discovery promised, and logs it', async () => {
    mesh.resolver.set('impostor', service('impostor', [mesh.server.endpoint(mesh.app.port, spiffe('payments'))]));
    const answer = await viaProxy(mesh.client, 'http://impostor:5000/');
    assert.equal(answer.status, 502);
    assert.match(answer.body, new RegExp(`is not ${spiffe('payments').replace(/[/.]/g, '\\$&')}`));
    assert.ok(mesh.client.logs.some((l) => l.includes('refused a peer proxy with the wrong identity') && l.includes(spiffe('helloworld'))));
    assert.ok(metric(await scrape(mesh.client), 'outbound_tcp_errors_total', { error: 'peer_identity' }) >= 1);
  });

  it('refuses plaintext, certificate-less and foreign-root clients at the inbound port, and logs them', async () => {
    const before = metric(await scrape(mesh.server), 'inbound_tcp_errors_total', { error: 'tls_handshake' });
    const plaintext = await raw(mesh.server.ip, mesh.server.ports.inbound, 'GET / HTTP/1.1\r\nHost: helloworld\r\n\r\n');
    assert.doesNotMatch(plaintext, /HTTP\/1\.1 \d{3}/);
    assert.equal((await tlsClient(mesh.server.ip, mesh.server.ports.inbound, {})).answered, false);
    const m = foreign.material();
    assert.equal((await tlsClient(mesh.server.ip, mesh.server.ports.inbound, { key: m.keyPem, cert: m.certChainPem })).answered, false);
    await eventually(async () => assert.equal(metric(await scrape(mesh.server), 'inbound_tcp_errors_total', { error: 'tls_handshake' }) - before, 3));
    assert.ok(mesh.server.logs.filter((l) => l.includes('refused a client that did not complete mTLS')).length >= 3);
  });

  it('detects a loop with Via and answers 508', async () => {
    // An endpoint that is the client proxy's own outbound port sends every request back to it.
    mesh.resolver.set('loop', service('loop', [{ address: mesh.client.ip, port: mesh.client.ports.outbound, cluster: 'cluster1', ready: true }]));
    const answer = await viaProxy(mesh.client, 'http://loop:80/');
    assert.equal(answer.status, 508);
    assert.match(answer.body, /loop detected/);
  });

  it("refuses to forward to the proxy's own ports", async () => {
    mesh.resolver.set('sneaky', service('sneaky', [mesh.server.endpoint(mesh.server.ports.admin, spiffe('helloworld'))]));
    const answer = await viaProxy(mesh.client, 'http://sneaky:4191/metrics');
    assert.equal(answer.status, 403);
    assert.match(answer.body, /belongs to the proxy/);
  });

  it('is still alive and leaks no client connection after all of it', async () => {
    assert.equal(await scrape(mesh.client, '/live'), 'live\n');
    assert.equal(await scrape(mesh.server, '/live'), 'live\n');
    assert.equal((await viaProxy(mesh.client, 'http://helloworld:5000/')).body, 'fine');
    // The loop test left a kept-alive connection from the proxy's plain pool to itself; the pool
    // lets idle connections go after 4 s.
    await eventually(async () => {
      assert.equal(metric(await scrape(mesh.client), 'tcp_open_connections', { direction: 'outbound', peer: 'src' }), 0);
      // Only the client proxy's one pooled session remains at the server proxy.
      assert.equal(metric(await scrape(mesh.server), 'tcp_open_connections', { direction: 'inbound', peer: 'src' }), 1);
    }, 8000);
  });
});
