// The opaque TCP path through the stages, against real sockets: a name's endpoints are tried in
// turn until one connects (the same attempt loop as HTTP), an address is connected to directly,
// and what cannot be reached is refused with a status.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import type { MeshConnector } from '../../../../src/proxy/outbound/endpoint/connector.js';
import { Refusal } from '../../../../src/proxy/outbound/call.js';
import { TcpEndpoint } from '../../../../src/proxy/outbound/opaq/endpoint.js';
import { Tunnels } from '../../../../src/proxy/outbound/opaq/tunnel.js';
import { StaticResolver } from '../../../../src/proxy/static-resolver.js';
import { deadPort, destination, echoServer, HOST, listening, logger, metrics, plainEndpoint, roundTrip, routeTable } from '../fixtures.js';

describe('opaque TCP stages', () => {
  let echo: Awaited<ReturnType<typeof listening<net.Server>>>;
  let dead: number;

  before(async () => {
    echo = await listening(echoServer());
    dead = await deadPort();
  });
  after(() => echo.close());

  function tunnels(resolver: StaticResolver) {
    const m = metrics();
    const routes = routeTable(resolver, m);
    const { log, lines } = logger();
    const plainConnections = m.tcpSeries({ direction: 'outbound', peer: 'dst' });
    return { routes, lines, plainConnections, tunnels: new Tunnels({ routes, endpoint: new TcpEndpoint(undefined as unknown as MeshConnector, m, 4143), resolveTimeoutMs: 100, plainConnections, log }) };
  }

  it('connects to an endpoint of the name, past one that refuses, and backs that one off', async () => {
    const t = tunnels(new StaticResolver({ redis: destination([plainEndpoint(dead, 'dead'), plainEndpoint(echo.port, 'live')]) }));
    for (let i = 0; i < 2; i++) {
      const socket = (await t.tunnels.open('redis:6379')) as net.Socket;
      assert.equal(await roundTrip(socket, 'PING\r\n'), 'PING\r\n');
      socket.destroy();
    }
    const backend = (t.routes.snapshot()[0] as { backends: { endpoints: { pod: string; failures: number; pending: number }[] }[] }).backends[0]!;
    assert.deepEqual(
      backend.endpoints.map((e) => [e.pod, e.failures, e.pending]),
      [
        ['dead', 1, 0],
        ['live', 0, 0],
      ],
      'the dead endpoint was tried once, then sat out its back-off',
    );
    assert.equal(t.lines.filter((l) => l.includes('connect failed; trying another endpoint')).length, 1);
  });

  it('connects to an IP address directly, counting the connection', async () => {
    const t = tunnels(new StaticResolver());
    const socket = (await t.tunnels.open(`${HOST}:${echo.port}`)) as net.Socket;
    assert.equal(await roundTrip(socket, 'hi'), 'hi');
    assert.equal(t.plainConnections.opened, 1);
    socket.destroy();
  });

  it('refuses with 503 a name that has nothing to connect to, and with 502 what cannot be reached', async () => {
    const t = tunnels(new StaticResolver({ gone: destination([plainEndpoint(dead, 'dead')]) }));
    const refused = (status: number, message: RegExp) => (err: unknown) => err instanceof Refusal && err.status === status && message.test(err.message);
    await assert.rejects(t.tunnels.open('nosuch:6379'), refused(503, /no such service "nosuch:6379"/));
    await assert.rejects(t.tunnels.open('gone:6379'), refused(502, /cannot connect to dead \(127\.0\.0\.1:\d+\): connect ECONNREFUSED/));
    await assert.rejects(t.tunnels.open(`${HOST}:${dead}`), refused(502, /cannot connect to 127\.0\.0\.1:\d+/));
  });
});
