// The inbound stages on real sockets: mTLS in (a client without a certificate is refused), HTTP/2
// streams checked and passed to the app as HTTP/1.1, and tunnels to an app port.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import type { TlsIdentity } from '../../../../src/identity/tls.js';
import { InboundProxy } from '../../../../src/proxy/inbound/server/tls.js';
import type { ProxyMetrics } from '../../../../src/proxy/metrics.js';
import { MESH_HEADERS } from '../../../../src/proxy/transport/headers.js';
import { dialPeer, HTTP_ALPN } from '../../../../src/proxy/transport/tls.js';
import { encodeLine, readLine, TUNNEL_ALPN } from '../../../../src/proxy/transport/tunnel.js';
import { echoServer, HOST, identities, listening, logger, metrics, spiffe } from '../fixtures.js';

describe('inbound stages', () => {
  let app: Awaited<ReturnType<typeof listening<http.Server>>>;
  let echo: Awaited<ReturnType<typeof listening<net.Server>>>;
  let proxy: InboundProxy;
  let port: number;
  let client: TlsIdentity;
  let m: ProxyMetrics;
  let session: http2.ClientHttp2Session;

  before(async () => {
    const identityOf = await identities();
    client = await identityOf('sleep');
    app = await listening(http.createServer((req, res) => res.end(`${req.method} ${req.url} host=${req.headers.host} via=${req.headers.via} mesh=${String(req.headers[MESH_HEADERS.targetPort] ?? 'none')}`)));
    echo = await listening(echoServer());
    m = metrics();
    proxy = new InboundProxy({ host: HOST, port: 0, proxyName: 'web.sample.cluster1', cluster: 'cluster1', identity: await identityOf('web'), metrics: m, log: logger().log, reservedPorts: () => [port] });
    port = await proxy.listen();
    const socket = dialPeer(client, { host: HOST, port, identity: spiffe('web') }, HTTP_ALPN);
    session = http2.connect(`http://${HOST}:${port}`, { createConnection: () => socket });
  });
  after(async () => {
    session.destroy();
    await proxy.close();
    await app.close();
    await echo.close();
  });

  async function call(headers: http2.OutgoingHttpHeaders): Promise<{ status: number; text: string }> {
    const stream = session.request({ ':method': 'GET', ':path': '/hello', ':authority': 'web:80', [MESH_HEADERS.clientCluster]: 'cluster2', ...headers });
    const [response] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    return { status: Number(response[':status']), text };
  }

  it('passes a stream to the app port it names, as HTTP/1.1 without the mesh headers, and counts it by client', async () => {
    const answer = await call({ [MESH_HEADERS.targetPort]: String(app.port) });
    assert.deepEqual(answer, { status: 200, text: `GET /hello host=web:80 via=1.1 web.sample.cluster1:${port} (strait) mesh=none` });
    const text = await m.text();
    assert.match(text, new RegExp(`request_total\\{direction="inbound",authority="web:80",tls="true",client_id="${spiffe('sleep').replace(/[/.]/g, '\\$&')}",src_cluster="cluster2",dst_cluster="cluster1"\\} 1`));
  });

  it('refuses a stream without a valid app port, for the proxy\'s own port, or that already passed here', async () => {
    assert.equal((await call({ [MESH_HEADERS.targetPort]: 'x' })).status, 400);
    assert.equal((await call({ [MESH_HEADERS.targetPort]: String(port) })).status, 403);
    const loop = await call({ [MESH_HEADERS.targetPort]: String(app.port), via: `1.1 web.sample.cluster1:${port} (strait)` });
    assert.equal(loop.status, 508);
  });

  it('opens a tunnel to the app port the header names, and refuses one to its own port', async () => {
    const tunnel = dialPeer(client, { host: HOST, port, identity: spiffe('web') }, TUNNEL_ALPN);
    await once(tunnel, 'secureConnect');
    tunnel.write(encodeLine({ port: echo.port, cluster: 'cluster2' }));
    assert.equal(await readLine(tunnel, 2000), '{"ok":true}');
    tunnel.resume();
    tunnel.write('hello');
    assert.equal(String((await once(tunnel, 'data'))[0]), 'hello');
    tunnel.destroy();
    const own = dialPeer(client, { host: HOST, port, identity: spiffe('web') }, TUNNEL_ALPN);
    own.write(encodeLine({ port, cluster: 'cluster2' }));
    assert.match(await readLine(own, 2000), /belongs to the proxy, not the app/);
    own.destroy();
  });

  it('refuses a client without a certificate at the handshake, and counts it', async () => {
    const anonymous = tls.connect({ host: HOST, port, rejectUnauthorized: false, ALPNProtocols: [HTTP_ALPN] });
    anonymous.on('error', () => {});
    await new Promise((resolve) => anonymous.once('close', resolve)); // once() would reject on the alert
    assert.match(await m.text(), /inbound_tcp_errors_total\{error="tls_handshake"\} 1/);
  });
});
