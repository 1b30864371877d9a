// The outbound server stage on a real port: what it refuses itself, what it calls directly, and
// how a named call and a CONNECT go on through the stages (to unmeshed endpoints here).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import type { MeshConnector } from '../../../../src/proxy/outbound/endpoint/connector.js';
import { OutboundProxy } from '../../../../src/proxy/outbound/proxy.js';
import { PROXY_ERROR_HEADER } from '../../../../src/proxy/transport/headers.js';
import { StaticResolver } from '../../../../src/proxy/static-resolver.js';
import { connect, destination, echoServer, HOST, listening, logger, metrics, plainEndpoint, routeTable } from '../fixtures.js';

function request(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('outbound server stage', () => {
  let app: Awaited<ReturnType<typeof listening<http.Server>>>;
  let echo: Awaited<ReturnType<typeof listening<net.Server>>>;
  let proxy: OutboundProxy;
  let port: number;

  before(async () => {
    app = await listening(http.createServer((req, res) => res.end(`app saw ${req.headers.host} ${req.url} via ${req.headers.via}`)));
    echo = await listening(echoServer());
    const resolver = new StaticResolver({ web: destination([plainEndpoint(app.port)]), redis: destination([plainEndpoint(echo.port)]) });
    const m = metrics();
    proxy = new OutboundProxy({
      host: HOST,
      port: 0,
      proxyName: 'sleep.sample.cluster1',
      cluster: 'cluster1',
      peerInboundPort: 4143,
      tcpListeners: [],
      routes: routeTable(resolver, m),
      connector: { close() {} } as unknown as MeshConnector,
      metrics: m,
      log: logger().log,
    });
    port = (await proxy.listen()).port;
  });
  after(async () => {
    await proxy.close();
    await app.close();
    await echo.close();
  });

  it('routes a named call (absolute-form, as http_proxy sends it) and calls an address directly', async () => {
    const via = `1.1 sleep.sample.cluster1:${port} (strait)`;
    const named = await request(port, 'http://web/hello?a=1');
    assert.deepEqual([named.status, named.text], [200, `app saw web /hello?a=1 via ${via}`]);
    const direct = await request(port, '/x', { host: `${HOST}:${app.port}` });
    assert.equal(direct.text, `app saw ${HOST}:${app.port} /x via ${via}`);
  });

  it('answers itself what it cannot pass on, saying why', async () => {
    const noTarget = await request(port, 'https://web/');
    assert.equal(noTarget.status, 400);
    assert.match(String(noTarget.headers[PROXY_ERROR_HEADER]), /names no target/);
    const loop = await request(port, 'http://web/', { via: `1.1 sleep.sample.cluster1:${port} (strait)` });
    assert.equal(loop.status, 508);
    const unknown = await request(port, 'http://nosuch/');
    assert.equal(unknown.status, 503);
    assert.equal(unknown.text, 'no such service "nosuch"\n');
  });

  it('tunnels CONNECT to an endpoint of the name', async () => {
    const socket = await connect(port);
    socket.write('CONNECT redis:6379 HTTP/1.1\r\nhost: redis:6379\r\n\r\nPING\r\n');
    let got = '';
    for await (const chunk of socket) {
      got += String(chunk);
      if (got.endsWith('PING\r\n')) break;
    }
    assert.equal(got, 'HTTP/1.1 200 Connection Established\r\n\r\nPING\r\n');
    socket.destroy();
  });
});
