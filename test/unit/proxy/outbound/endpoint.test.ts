// The endpoint stage against real sockets: plain HTTP/1.1 to an unmeshed endpoint (headers, the
// lease's report, a refused connect handed back for a retry), and the mesh connector's mTLS
// (a peer with the wrong identity, a port where nothing listens).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import { serverTlsOptions } from '../../../../src/identity/tls.js';
import type { HttpCall } from '../../../../src/proxy/outbound/call.js';
import { MeshConnector } from '../../../../src/proxy/outbound/endpoint/connector.js';
import { HttpEndpoint } from '../../../../src/proxy/outbound/endpoint/http.js';
import { ConnectFailed, meshTarget } from '../../../../src/proxy/outbound/endpoint/target.js';
import type { Pick } from '../../../../src/proxy/outbound/concrete/route-endpoint.js';
import { StaticResolver } from '../../../../src/proxy/static-resolver.js';
import { deadPort, destination, HOST, identities, listening, logger, metrics, plainEndpoint, routeTable, spiffe } from '../fixtures.js';

/** A front server that hands each request to `handle` as a call, the way the server stage does. */
async function front(handle: (call: HttpCall) => void) {
  return listening(
    http.createServer((req, res) => handle({ req, res, authority: req.headers.host ?? '', path: req.url ?? '/', expectContinue: false, hasBody: req.headers['content-length'] !== undefined })),
  );
}

async function get(port: number, headers: http.OutgoingHttpHeaders = {}, body?: string): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path: '/hello?x=1', method: body ? 'POST' : 'GET', headers: { host: 'web:80', ...headers }, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

describe('endpoint stage: plain HTTP/1.1', () => {
  let app: Awaited<ReturnType<typeof listening<http.Server>>>;
  let seen: IncomingHttpHeaders | undefined;

  before(async () => {
    app = await listening(
      http.createServer((req, res) => {
        seen = req.headers;
        res.writeHead(201, { 'x-app': 'yes', connection: 'keep-alive' }).end(`${req.method} ${req.url}`);
      }),
    );
  });
  after(() => app.close());

  it('passes the call on with its Host and this hop in Via, and reports the answer to the lease', async () => {
    const m = metrics();
    const routes = routeTable(new StaticResolver({ web: destination([plainEndpoint(app.port)]) }), m);
    const stage = new HttpEndpoint({ cluster: 'cluster1', peerInboundPort: 4143, connector: undefined as unknown as MeshConnector, metrics: m, log: logger().log, via: () => '1.1 me:4140 (strait)' });
    let pick: Pick | undefined;
    const server = await front((call) => {
      const picked = routes.get('web:80').pick();
      assert.ok('state' in picked);
      pick = picked;
      stage.forward(call, picked, (err) => assert.fail(`no retry expected: ${err.message}`));
    });
    try {
      const answer = await get(server.port, { 'proxy-connection': 'keep-alive', via: '1.1 app' });
      assert.equal(answer.status, 201);
      assert.equal(answer.text, 'GET /hello?x=1');
      assert.equal(answer.headers['x-app'], 'yes');
      assert.equal(seen?.host, 'web:80');
      assert.equal(seen?.via, '1.1 app, 1.1 me:4140 (strait)');
      assert.equal(seen?.['proxy-connection'], undefined, 'hop-by-hop headers stay behind');
      assert.equal(pick!.state.pending, 0);
      const series = pick!.target.httpSeries();
      assert.equal(series.requests, 1);
      assert.equal(series.byStatus.get(201)?.count, 1, 'the latency of the answer is recorded');
    } finally {
      stage.close();
      await server.close();
    }
  });

  it('a refused connect goes back for a retry when nothing was sent, and is answered 502 when a body went out', async () => {
    const port = await deadPort();
    const routes = routeTable(new StaticResolver({ web: destination([plainEndpoint(port)]) }));
    const stage = new HttpEndpoint({ cluster: 'cluster1', peerInboundPort: 4143, connector: undefined as unknown as MeshConnector, metrics: metrics(), log: logger().log, via: () => '1.1 me:4140 (strait)' });
    const retries: string[] = [];
    const server = await front((call) => {
      const pick = routes.get('web:80').pick();
      assert.ok('state' in pick);
      stage.forward(call, pick, (err) => {
        retries.push((err as NodeJS.ErrnoException).code ?? err.message);
        call.res.writeHead(599).end('retried');
      });
    });
    try {
      assert.equal((await get(server.port)).status, 599);
      assert.deepEqual(retries, ['ECONNREFUSED']);
      const withBody = await get(server.port, {}, 'payload');
      assert.equal(withBody.status, 502);
      assert.match(withBody.text, /failed before answering: connect ECONNREFUSED/);
      assert.equal(retries.length, 1, 'a call whose body was sent is not retried');
    } finally {
      stage.close();
      await server.close();
    }
  });
});

describe('endpoint stage: mesh connector', () => {
  let identityOf: Awaited<ReturnType<typeof identities>>;
  let peer: Awaited<ReturnType<typeof listening<http2.Http2SecureServer>>>;

  before(async () => {
    identityOf = await identities();
    const server = http2.createSecureServer(serverTlsOptions(await identityOf('web'), { clientCert: 'require', alpn: ['h2'] }));
    server.on('stream', (stream) => stream.respond({ ':status': 200 }, { endStream: true }));
    peer = await listening(server);
  });
  after(() => peer.close());

  function connector(m = metrics()) {
    return identityOf('sleep').then((identity) => new MeshConnector({ identity, metrics: m, log: logger().log, cluster: 'cluster1' }));
  }

  it('opens a session to a peer with the promised identity and pools it', async () => {
    const c = await connector();
    try {
      const target = meshTarget({ ...plainEndpoint(5000), identity: spiffe('web'), proxy: { host: HOST, port: peer.port } }, 4143);
      const session = await c.session(target, {});
      assert.equal(c.connectedSession(target), session);
      assert.deepEqual(c.snapshot(), [{ peer: `${HOST}:${peer.port}`, identity: spiffe('web'), connected: true }]);
    } finally {
      c.close();
    }
  });

  it('refuses a peer that is someone else, and says a port where nothing listens is unreachable', async () => {
    const m = metrics();
    const c = await connector(m);
    try {
      const impostor = meshTarget({ ...plainEndpoint(5000), identity: spiffe('admin'), proxy: { host: HOST, port: peer.port } }, 4143);
      await assert.rejects(c.session(impostor, {}), (err: unknown) => err instanceof ConnectFailed && !err.unreachable && /is not spiffe:\/\/cluster\.local\/ns\/sample\/sa\/admin/.test(err.message));
      assert.match(await m.text(), /outbound_tcp_errors_total\{error="peer_identity"\} 1/);
      const nowhere = meshTarget({ ...plainEndpoint(5000), identity: spiffe('web'), proxy: { host: HOST, port: await deadPort() } }, 4143);
      await assert.rejects(c.session(nowhere, {}), (err: unknown) => err instanceof ConnectFailed && err.unreachable);
      await assert.rejects(c.tunnel(nowhere, 5000, {}), (err: unknown) => err instanceof ConnectFailed && err.unreachable);
    } finally {
      c.close();
    }
  });
});
