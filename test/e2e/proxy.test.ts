// The proxy's HTTP path end to end, with real sockets and certificates: an HTTP/1.1 client using
// the client proxy as its http_proxy, the client proxy carrying the call over mTLS HTTP/2 to the
// server proxy, and the server proxy restoring it for the app. Everything the app and the client
// see is checked, as are both proxies' metrics and admin endpoints.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { eventually, metric, readAnswer, scrape, service, spiffe, startMesh, viaProxy, type Mesh } from './proxy-harness.js';

const NET = '127.93.1';
const URL_BASE = 'http://helloworld:5000';

/** What the app saw of the last request to /echo. */
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Deterministic bytes, so both ends can hash the same stream. */
function block(index: number, size: number): Buffer {
  return Buffer.alloc(size, index % 251);
}

/** Resolvers the app calls when a streaming test's first chunk arrives or leaves. */
const signals: { uploadStarted?: () => void; downloadMayFinish?: Promise<void> } = {};

function app(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://app');
  switch (url.pathname) {
    case '/echo': {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
        res.setHeader('x-app', 'helloworld');
        res.setHeader('connection', 'x-app-secret');
        res.setHeader('x-app-secret', 'must not cross the hop');
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.end(JSON.stringify(seen));
      });
      return;
    }
    case '/trailers':
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part one, ');
      res.write('part two');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
      return;
    case '/empty':
      res.writeHead(204, { 'x-empty': 'yes' });
      res.end();
      return;
    case '/upload': {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        if (bytes === 0) signals.uploadStarted?.();
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null })));
      return;
    }
    case '/download': {
      const blocks = Number(url.searchParams.get('blocks'));
      const size = Number(url.searchParams.get('size'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blocks * size });
      let i = 0;
      const pump = (): void => {
        while (i < blocks) {
          if (i === 1 && signals.downloadMayFinish) {
            const wait = signals.downloadMayFinish;
            signals.downloadMayFinish = undefined;
            void wait.then(pump);
            return;
          }
          if (!res.write(block(i++, size))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    default:
      res.writeHead(404);
      res.end('not found');
  }
}

describe('proxy HTTP path: client proxy → mTLS HTTP/2 → server proxy → app', { timeout: 30_000 }, () => {
  let mesh: Mesh;

  before(async () => {
    mesh = await startMesh(NET, app, { resolveTimeoutMs: 300 });
    // The app decides itself whether to take a body it was warned about.
    mesh.app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (req.headers['x-refuse'] === 'yes') {
        res.writeHead(413, { 'content-type': 'text/plain' });
        return res.end('too large for me');
      }
      res.writeContinue();
      app(req, res);
    });
  });
  after(() => mesh.close());

  it('restores the request for the app: method, path, Host, end-to-end headers, Via; hop-by-hop headers stay behind', async () => {
    const answer = await viaProxy(mesh.client, `${URL_BASE}/echo?x=1&y=two`, {
      method: 'PUT',
      headers: {
        'x-request-id': 'r-1',
        'x-multi': ['one', 'two'],
        connection: 'keep-alive, x-hop',
        'x-hop': 'hop-by-hop because Connection names it',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic c2VjcmV0',
        'strait-target-port': '4191',
        'strait-client-cluster': 'spoofed',
        'content-type': 'text/plain',
      },
      body: 'hello body',
    });
    assert.equal(answer.status, 200, answer.body);
    const seen = JSON.parse(answer.body) as Seen;
    assert.equal(seen.method, 'PUT');
    assert.equal(seen.url, '/echo?x=1&y=two');
    assert.equal(seen.headers.host, 'helloworld:5000');
    assert.equal(seen.body, 'hello body');
    assert.equal(seen.headers['x-request-id'], 'r-1');
    assert.equal(seen.headers['x-multi'], 'one, two');
    assert.equal(seen.headers['content-type'], 'text/plain');
    assert.equal(seen.headers['content-length'], '10');
    for (const gone of ['x-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'strait-target-port', 'strait-client-cluster']) {
      assert.equal(seen.headers[gone], undefined, `${gone} reached the app`);
    }
    assert.equal(
      seen.headers.via,
      `1.1 ${mesh.client.pod}.sample.cluster1:${mesh.client.ports.outbound} (strait), 1.1 ${mesh.server.pod}.sample.cluster1:${mesh.server.ports.inbound} (strait)`,
    );
    // And the way back: the app's end-to-end headers arrive, its hop-by-hop ones do not.
    assert.equal(answer.headers['x-app'], 'helloworld');
    assert.deepEqual(answer.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(answer.headers['x-app-secret'], undefined);
  });

  it('accepts origin-form requests with a Host header, as a transparent client sends them', async () => {
    const answer = await new Promise<Awaited<ReturnType<typeof readAnswer>>>((resolve, reject) => {
      http
        .get({ host: mesh.client.ip, port: mesh.client.ports.outbound, path: '/echo', headers: { host: 'helloworld:5000' }, agent: false }, (res) => readAnswer(res).then(resolve, reject))
        .on('error', reject);
    });
    const seen = JSON.parse(answer.body) as Seen;
    assert.equal(seen.url, '/echo');
    assert.equal(seen.headers.host, 'helloworld:5000');
  });

  it('streams a chunked request body to the app, still chunked', async () => {
    const answer = await new Promise<Awaited<ReturnType<typeof readAnswer>>>((resolve, reject) => {
      const req = http.request({ host: mesh.client.ip, port: mesh.client.ports.outbound, method: 'POST', path: `${URL_BASE}/upload`, agent: false });
      req.on('response', (res) => readAnswer(res).then(resolve, reject));
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(block(i, 1000));
      req.end();
    });
    const expected = createHash('sha256');
    for (let i = 0; i < 5; i++) expected.update(block(i, 1000));
    assert.deepEqual(JSON.parse(answer.body), { bytes: 5000, sha256: expected.digest('hex'), te: 'chunked' });
  });

  it('passes HEAD and 204 answers without a body', async () => {
    const head = await viaProxy(mesh.client, `${URL_BASE}/download?blocks=2&size=10`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '20');
    assert.equal(head.body, '');
    const empty = await viaProxy(mesh.client, `${URL_BASE}/empty`);
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['x-empty'], 'yes');
    assert.equal(empty.body, '');
  });

  it('carries response trailers over HTTP/2 back to the HTTP/1.1 client', async () => {
    const answer = await viaProxy(mesh.client, `${URL_BASE}/trailers`, { headers: { te: 'trailers' } });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'part one, part two');
    assert.equal(answer.headers['transfer-encoding'], 'chunked');
    assert.equal(answer.trailers['x-checksum'], 'abc123');
  });

  it('relays Expect: 100-continue end to end: the 100 comes from the app, and so does a refusal', async () => {
    const send = (refuse: boolean) =>
      new Promise<{ continued: boolean; status: number; body: string }>((resolve, reject) => {
        let continued = false;
        const req = http.request({
          host: mesh.client.ip,
          port: mesh.client.ports.outbound,
          method: 'POST',
          path: `${URL_BASE}/upload`,
          headers: { expect: '100-continue', 'content-length': 4, ...(refuse ? { 'x-refuse': 'yes' } : {}) },
          agent: false,
        });
        req.on('continue', () => {
          continued = true;
          req.end('body');
        });
        req.on('response', (res) => readAnswer(res).then((a) => resolve({ continued, status: a.status, body: a.body }), reject));
        req.on('error', reject);
        req.flushHeaders();
      });
    const accepted = await send(false);
    assert.equal(accepted.continued, true);
    assert.equal(accepted.status, 200);
    assert.equal((JSON.parse(accepted.body) as { bytes: number }).bytes, 4);
    const refused = await send(true);
    assert.equal(refused.continued, false, 'the client was told to send a body the app refused');
    assert.equal(refused.status, 413);
    assert.equal(refused.body, 'too large for me');
  });

  it('streams bodies both ways without buffering them: the first bytes arrive before the last are sent', async () => {
    // Upload: the client holds back the rest of its body until the app has seen the first chunk.
    const started = new Promise<void>((resolve) => (signals.uploadStarted = resolve));
    const upload = new Promise<Awaited<ReturnType<typeof readAnswer>>>((resolve, reject) => {
      const req = http.request({ host: mesh.client.ip, port: mesh.client.ports.outbound, method: 'POST', path: `${URL_BASE}/upload`, agent: false });
      req.on('response', (res) => readAnswer(res).then(resolve, reject));
      req.on('error', reject);
      req.write(block(0, 100));
      void started.then(() => req.end(block(1, 100)));
    });
    assert.equal((JSON.parse((await upload).body) as { bytes: number }).bytes, 200);
    signals.uploadStarted = undefined;

    // Download: the app holds back the rest until the client has received the first block.
    let firstArrived!: () => void;
    signals.downloadMayFinish = new Promise<void>((resolve) => (firstArrived = resolve));
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      http.get({ host: mesh.client.ip, port: mesh.client.ports.outbound, path: `${URL_BASE}/download?blocks=2&size=1000`, agent: false }, resolve).on('error', reject),
    );
    let received = 0;
    res.on('data', (c: Buffer) => {
      if (received === 0) firstArrived();
      received += c.length;
    });
    await once(res, 'end');
    assert.equal(received, 2000);
  });

  it('moves large bodies intact in both directions (64 MiB each way)', async () => {
    const blocks = 1024;
    const size = 64 * 1024;
    const expected = createHash('sha256');
    for (let i = 0; i < blocks; i++) expected.update(block(i, size));
    const digest = expected.digest('hex');

    const up = await new Promise<Awaited<ReturnType<typeof readAnswer>>>((resolve, reject) => {
      const req = http.request({ host: mesh.client.ip, port: mesh.client.ports.outbound, method: 'POST', path: `${URL_BASE}/upload`, headers: { 'content-length': blocks * size }, agent: false });
      req.on('response', (res) => readAnswer(res).then(resolve, reject));
      req.on('error', reject);
      let i = 0;
      const pump = (): void => {
        while (i < blocks) if (!req.write(block(i++, size))) return void req.once('drain', pump);
        req.end();
      };
      pump();
    });
    assert.deepEqual(JSON.parse(up.body), { bytes: blocks * size, sha256: digest, te: null });

    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      http.get({ host: mesh.client.ip, port: mesh.client.ports.outbound, path: `${URL_BASE}/download?blocks=${blocks}&size=${size}`, agent: false }, resolve).on('error', reject),
    );
    const hash = createHash('sha256');
    let bytes = 0;
    res.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    await once(res, 'end');
    assert.equal(bytes, blocks * size);
    assert.equal(hash.digest('hex'), digest);
  });

  it('answers 503 saying why when a service does not exist, has no ready endpoint, or discovery is silent', async () => {
    const unknown = await viaProxy(mesh.client, 'http://nosuchservice:8080/');
    assert.equal(unknown.status, 503);
    assert.match(unknown.body, /no such service "nosuchservice:8080"/);
    assert.match(String(unknown.headers['strait-proxy-error']), /no such service/);

    mesh.resolver.set('idle', service('idle', [{ address: `${NET}.9`, port: 80, cluster: 'cluster1', ready: false }]));
    const idle = await viaProxy(mesh.client, 'http://idle/');
    assert.equal(idle.status, 503);
    assert.match(idle.body, /no ready endpoints for idle\.sample\.svc\.cluster\.local/);

    mesh.resolver.silent.add('quiet');
    const started = Date.now();
    const quiet = await viaProxy(mesh.client, 'http://quiet/');
    assert.equal(quiet.status, 503);
    assert.match(quiet.body, /discovery has not answered for "quiet"/);
    assert.ok(Date.now() - started >= 250, 'the proxy waited for discovery before giving up');
  });

  it('calls an address the app names directly, in plaintext, without discovery', async () => {
    const answer = await viaProxy(mesh.client, `http://${NET}.2:${mesh.app.port}/echo`);
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as Seen).headers.host, `${NET}.2:${mesh.app.port}`);
  });

  it('records every call in both proxies’ metrics, with both identities and clusters', async () => {
    const before = metric(await scrape(mesh.client), 'request_total', { direction: 'outbound', dst_service: 'helloworld' });
    for (let i = 0; i < 5; i++) assert.equal((await viaProxy(mesh.client, `${URL_BASE}/echo`)).status, 200);
    const clientText = await scrape(mesh.client);
    const serverText = await scrape(mesh.server);
    const outbound = {
      direction: 'outbound',
      authority: 'helloworld:5000',
      tls: 'true',
      server_id: spiffe('helloworld'),
      dst_service: 'helloworld',
      dst_namespace: 'sample',
      dst_backend: 'helloworld',
      dst_pod: mesh.server.pod,
      src_cluster: 'cluster1',
      dst_cluster: 'cluster1',
    };
    assert.equal(metric(clientText, 'request_total', outbound) - before, 5);
    assert.ok(metric(clientText, 'response_total', { ...outbound, classification: 'success', status_code: '200' }) >= 5);
    assert.ok(metric(clientText, 'response_latency_ms_count', outbound) >= 5);
    assert.ok(metric(clientText, 'response_latency_ms_bucket', { ...outbound, le: '+Inf' }) >= 5);
    const inbound = { direction: 'inbound', authority: 'helloworld:5000', tls: 'true', client_id: spiffe('sleep'), src_cluster: 'cluster1', dst_cluster: 'cluster1' };
    assert.ok(metric(serverText, 'request_total', inbound) >= 5);
    assert.ok(metric(serverText, 'response_total', { ...inbound, classification: 'success' }) >= 5);
    // The hop between the proxies is one long-lived mTLS connection, seen from both ends.
    assert.equal(metric(clientText, 'tcp_open_connections', { direction: 'outbound', peer: 'dst', tls: 'true', server_id: spiffe('helloworld') }), 1);
    assert.equal(metric(serverText, 'tcp_open_connections', { direction: 'inbound', peer: 'src', tls: 'true', client_id: spiffe('sleep') }), 1);
    assert.match(clientText, /# TYPE response_latency_ms histogram/);
  });

  it('serves /live, /ready and /config', async () => {
    assert.equal(await scrape(mesh.client, '/live'), 'live\n');
    assert.equal(await scrape(mesh.client, '/ready'), 'ready\n');
    const config = JSON.parse(await scrape(mesh.client, '/config')) as {
      identity: { spiffeId: string };
      destinations: { authority: string; backends: { endpoints: { pod: string; ewmaMs: number; failures: number }[] }[] }[];
      sessions: { identity: string; connected: boolean }[];
    };
    assert.equal(config.identity.spiffeId, spiffe('sleep'));
    const helloworld = config.destinations.find((d) => d.authority === 'helloworld:5000');
    assert.equal(helloworld?.backends[0]?.endpoints[0]?.pod, mesh.server.pod);
    assert.equal(typeof helloworld?.backends[0]?.endpoints[0]?.ewmaMs, 'number');
    assert.deepEqual(config.sessions, [{ peer: `${NET}.2:${mesh.server.ports.inbound}`, identity: spiffe('helloworld'), connected: true }]);
  });

  it('leaves no connection behind once clients are done', async () => {
    await eventually(async () => {
      const text = await scrape(mesh.client);
      assert.equal(metric(text, 'tcp_open_connections', { direction: 'outbound', peer: 'src' }), 0);
    });
    // What is left at the app is the proxies' small keep-alive pools: the server proxy's, and the
    // client proxy's for the call that named the app's address directly.
    const fromServerProxy = metric(await scrape(mesh.server), 'tcp_open_connections', { direction: 'inbound', peer: 'dst' });
    const fromClientProxy = metric(await scrape(mesh.client), 'tcp_open_connections', { direction: 'outbound', peer: 'dst', tls: 'no_identity' });
    assert.ok(fromServerProxy <= 3, `${fromServerProxy} connections from the server proxy to the app`);
    assert.equal(mesh.app.connections(), fromServerProxy + fromClientProxy);
    // A raw client that half-closes is let go too.
    const socket = net.connect({ host: mesh.client.ip, port: mesh.client.ports.outbound });
    await once(socket, 'connect');
    socket.end();
    await once(socket, 'close');
  });
});
