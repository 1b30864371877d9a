// The tunnel protocol's pieces on real sockets: the header line is read and the bytes after it
// are left for the splice; splice carries both ways and closes the other side after one closes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { MAX_TUNNEL_LINE, parseTunnelReply, parseTunnelRequest, readLine, splice } from '../../../../src/proxy/transport/tunnel.js';
import { connect, echoServer, listening } from '../fixtures.js';

/** A connected pair of sockets: [client side, server side]. */
async function pair(): Promise<[net.Socket, net.Socket, () => Promise<void>]> {
  const accepted: net.Socket[] = [];
  const server = await listening(net.createServer((s) => accepted.push(s)));
  const client = await connect(server.port);
  while (accepted.length === 0) await new Promise((r) => setImmediate(r));
  return [client, accepted[0]!, () => server.close()];
}

describe('tunnel protocol', () => {
  it('reads the header line and leaves the bytes after it for whoever pipes the socket', async () => {
    const [client, server, close] = await pair();
    client.write('{"port":5000,"cluster":"c2"}\nfirst bytes');
    const line = await readLine(server, 1000);
    assert.deepEqual(parseTunnelRequest(line), { port: 5000, cluster: 'c2' });
    server.resume();
    assert.equal(String((await once(server, 'data'))[0]), 'first bytes');
    client.destroy();
    server.destroy();
    await close();
  });

  it('refuses a header line longer than the limit, and one that never comes', async () => {
    const [client, server, close] = await pair();
    client.write('x'.repeat(MAX_TUNNEL_LINE + 10));
    await assert.rejects(readLine(server, 1000), /longer than 1024 bytes/);
    const [quiet, quietServer, closeQuiet] = await pair();
    await assert.rejects(readLine(quietServer, 50), /no tunnel header within 50 ms/);
    for (const s of [client, server, quiet, quietServer]) s.destroy();
    await close();
    await closeQuiet();
  });

  it('parses what peers send, and says what is wrong with the rest', () => {
    assert.equal(parseTunnelRequest('{"port":70000}'), 'the tunnel header has no valid port');
    assert.equal(parseTunnelRequest('nope'), 'the tunnel header is not JSON');
    assert.deepEqual(parseTunnelReply('{"ok":true}'), { ok: true });
    assert.deepEqual(parseTunnelReply('{"error":"no app"}'), { error: 'no app' });
  });
});

describe('splice', () => {
  let echo: Awaited<ReturnType<typeof listening<net.Server>>>;
  before(async () => (echo = await listening(echoServer())));
  after(() => echo.close());

  it('carries bytes both ways, and ends the other connection once one closes', async () => {
    const [client, inner, close] = await pair();
    const upstream = await connect(echo.port);
    splice(inner, upstream);
    client.write('round trip');
    assert.equal(String((await once(client, 'data'))[0]), 'round trip');
    const upstreamClosed = once(upstream, 'close');
    client.end();
    await upstreamClosed;
    client.destroy();
    await close();
  });
});
