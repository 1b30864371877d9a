// The gateway over real sockets and real TLS: a client of cluster2 does mTLS through cluster1's
// gateway with a workload behind it and both ends see each other's identity and share one TLS
// session (the gateway did not terminate it); the probe answers with the cluster's name to mesh
// members only; every bad input is refused without a single connection reaching an upstream.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { endpointRouteKey, meshApiRouteKey, probeRouteKey } from '../../src/api/route-keys.js';
import type { RefusalReason } from '../../src/gateway/router.js';
import { StaticRouteTable } from '../../src/gateway/routes.js';
import { anchorOnlyClientOptions, clientTlsOptions, type TlsIdentity } from '../../src/identity/tls.js';
import { tempDir } from '../unit/identity/fixtures.js';
import { clientHello, clientHelloMessage, messageOf, paddingExtension, records, serverNameExtension } from '../unit/gateway/hellos.js';
import {
  eventually,
  GATEWAY_ID,
  meshIdentities,
  openTcpHandles,
  rawExchange,
  spiffe,
  tcpUpstream,
  testGateway,
  tlsCall,
  tlsWorkload,
  type MeshIdentities,
  type SeenClient,
  type TestGateway,
  type Upstream,
} from './gateway-harness.js';

const HELLOWORLD_KEY = endpointRouteKey('cluster1', 'sample', 'helloworld-v1-5d9c-abcde');
const RAW_KEY = endpointRouteKey('cluster1', 'sample', 'raw-0');
const PROBE_KEY = probeRouteKey('cluster1');
const MESH_API_KEY = meshApiRouteKey('cluster1');
const HELLOWORLD = spiffe('helloworld');
const SLEEP = spiffe('sleep');

let ids: MeshIdentities;
let handlesBefore: number;
let workload: Upstream & { seen: SeenClient[] };
let meshApi: Upstream & { seen: SeenClient[] };
/** Counts what reaches it; answers nothing. */
let recorder: Upstream;
let recorderBytes = 0;
let routes: StaticRouteTable;
let gateway: TestGateway;

before(async () => {
  handlesBefore = openTcpHandles();
  ids = await meshIdentities();
  workload = await tlsWorkload(ids.helloworld);
  meshApi = await tlsWorkload(ids.controlPlane);
  recorder = await tcpUpstream((socket) => socket.on('data', (c: Buffer) => (recorderBytes += c.length)));
  routes = new StaticRouteTable([
    [HELLOWORLD_KEY, { kind: 'endpoint', host: '127.0.0.1', port: workload.port }],
    [RAW_KEY, { kind: 'endpoint', host: '127.0.0.1', port: recorder.port }],
    [PROBE_KEY, { kind: 'probe' }],
    [MESH_API_KEY, { kind: 'mesh-api', host: '127.0.0.1', port: meshApi.port }],
  ]);
  gateway = await testGateway({ cluster: 'cluster1', identity: ids.gateway, routes });
});

after(async () => {
  // Before anything is closed by force: only the four listeners are left, every connection ended on its own.
  await eventually(() => assert.equal(openTcpHandles(), handlesBefore + 4, 'no socket is left open'));
  await gateway.close();
  await Promise.all([workload.close(), meshApi.close(), recorder.close()]);
  await eventually(() => assert.equal(openTcpHandles(), handlesBefore));
});

function mesh(identity: TlsIdentity, expected: string, servername: string, alpn?: string[]) {
  return clientTlsOptions(identity, expected, { servername, ...(alpn ? { alpn } : {}) });
}

describe('splicing: TLS end to end between the two workloads', () => {
  test('the server sees the client of cluster2, the client sees the workload, and both hold the same TLS session', async () => {
    const before = gateway.stats().endpoint;
    const result = await tlsCall(gateway.address.port, mesh(ids.sleep, HELLOWORLD, HELLOWORLD_KEY));
    assert.equal(result.serverId, HELLOWORLD, 'the client saw the workload, not the gateway');
    assert.equal(result.echoed, 'ping');
    const seen = workload.seen.at(-1)!;
    assert.equal(seen.clientId, SLEEP, 'the workload saw the real client');
    assert.equal(seen.serverName, HELLOWORLD_KEY);
    assert.equal(seen.sessionKey, result.sessionKey, 'one TLS session from end to end: the gateway never terminated it');
    await eventually(() => {
      const now = gateway.stats().endpoint;
      assert.equal(now.connections, before.connections + 1);
      assert.equal(now.active, 0);
      assert.ok(now.bytesFromClients > before.bytesFromClients && now.bytesToClients > before.bytesToClients);
    });
  });

  test('a client expecting the gateway\'s identity for an endpoint is refused by its own check: the gateway presents nothing', async () => {
    await assert.rejects(tlsCall(gateway.address.port, mesh(ids.sleep, GATEWAY_ID, HELLOWORLD_KEY)), /the peer is .*helloworld, expected .*gateway/);
  });

  test('the mesh API route is spliced to the control plane, which terminates TLS itself', async () => {
    const result = await tlsCall(gateway.address.port, mesh(ids.sleep, spiffe('control-plane', 'strait-system'), MESH_API_KEY));
    assert.equal(meshApi.seen.at(-1)!.clientId, SLEEP);
    assert.equal(meshApi.seen.at(-1)!.sessionKey, result.sessionKey);
    await eventually(() => assert.equal(gateway.stats().meshApi.connections, 1));
  });

  test('openssl s_client through the gateway completes mTLS with the workload', async () => {
    const { dir, remove } = tempDir('strait-gateway-');
    try {
      const m = ids.sleep.material();
      writeFileSync(`${dir}/key.pem`, m.keyPem);
      // -cert sends one certificate; the issuer goes in -cert_chain.
      const [leaf, ...issuers] = m.certChainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)!;
      writeFileSync(`${dir}/cert.pem`, leaf);
      writeFileSync(`${dir}/issuers.pem`, issuers.join(''));
      writeFileSync(`${dir}/ca.pem`, m.trustBundlePem);
      const args = ['s_client', '-connect', `127.0.0.1:${gateway.address.port}`, '-servername', HELLOWORLD_KEY, '-tls1_3', '-cert', `${dir}/cert.pem`,
        '-cert_chain', `${dir}/issuers.pem`, '-key', `${dir}/key.pem`, '-CAfile', `${dir}/ca.pem`, '-verify_return_error', '-quiet'];
      const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        // -quiet ignores the end of stdin, so the client is stopped once the echo is back.
        if (out.includes('over openssl')) child.kill();
      });
      const guard = setTimeout(() => child.kill(), 5000);
      child.stdin.write('over openssl\n');
      await new Promise((resolve) => child.once('close', resolve));
      clearTimeout(guard);
      assert.match(out, /over openssl/, 'the workload echoed what openssl sent');
      assert.equal(workload.seen.at(-1)!.clientId, SLEEP);
    } finally {
      remove();
    }
  });

  test('a ClientHello cut into many TLS records and sent a few bytes at a time still reaches the workload', async () => {
    const before = workload.seen.length;
    // A shim between the TLS client and the gateway: it re-cuts the client's first record into
    // 50-byte records and sends them in 1-7 byte writes, then passes everything else through.
    const shim = net.createServer((client) => {
      client.once('data', (first: Buffer) => {
        client.pause();
        const helloLength = 5 + first.readUInt16BE(3);
        const cut = records(messageOf(first.subarray(0, helloLength)), 50);
        const toGateway = net.connect({ host: '127.0.0.1', port: gateway.address.port, noDelay: true }, () => {
          void (async () => {
            for (let at = 0, step = 1; at < cut.length; at += step, step = (step % 7) + 1) {
              toGateway.write(cut.subarray(at, at + step));
              await new Promise((resolve) => setTimeout(resolve, 1));
            }
            toGateway.write(first.subarray(helloLength));
            client.pipe(toGateway).pipe(client);
          })();
        });
        toGateway.on('error', () => client.destroy());
        toGateway.once('close', () => client.destroy());
        client.once('close', () => toGateway.destroy());
      });
      client.on('error', () => {});
    });
    await new Promise<void>((resolve) => shim.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = shim.address() as net.AddressInfo;
      const result = await tlsCall(port, mesh(ids.sleep, HELLOWORLD, HELLOWORLD_KEY));
      assert.equal(result.serverId, HELLOWORLD);
      assert.equal(workload.seen.length, before + 1);
      assert.equal(workload.seen.at(-1)!.clientId, SLEEP);
      assert.equal(workload.seen.at(-1)!.sessionKey, result.sessionKey);
    } finally {
      await new Promise((resolve) => shim.close(resolve));
    }
  });

  test('a route removed from the table refuses new connections', async () => {
    const key = endpointRouteKey('cluster1', 'sample', 'helloworld-v1-5d9c-gone1');
    routes.set(key, { kind: 'endpoint', host: '127.0.0.1', port: workload.port });
    await tlsCall(gateway.address.port, mesh(ids.sleep, HELLOWORLD, key));
    routes.delete(key);
    const before = workload.connections;
    await assert.rejects(tlsCall(gateway.address.port, mesh(ids.sleep, HELLOWORLD, key)), /unrecognized name/);
    assert.equal(workload.connections, before);
  });

  test('an endpoint that does not answer: the client is closed and the failure counted', async () => {
    const closed = await tcpUpstream(() => {});
    const port = closed.port;
    await closed.close();
    const key = endpointRouteKey('cluster1', 'sample', 'gone-0');
    routes.set(key, { kind: 'endpoint', host: '127.0.0.1', port });
    const before = gateway.stats().endpoint.upstreamFailures;
    await assert.rejects(tlsCall(gateway.address.port, mesh(ids.sleep, HELLOWORLD, key)));
    await eventually(() => assert.equal(gateway.stats().endpoint.upstreamFailures, before + 1));
    assert.ok(gateway.logs.some((l) => l.msg === 'could not reach the route target; closing the client' && l.serverName === key));
    routes.delete(key);
  });

  test('a route that points back at the gateway is refused instead of looping', async () => {
    const key = endpointRouteKey('cluster1', 'sample', 'loop-0');
    routes.set(key, { kind: 'endpoint', host: '127.0.0.1', port: gateway.address.port });
    const before = gateway.stats();
    await rawExchange(gateway.address.port, clientHello([serverNameExtension(key)]));
    const now = gateway.stats();
    assert.equal(now.accepted, before.accepted + 1, 'the gateway did not connect to itself');
    assert.equal(now.endpoint.upstreamFailures, before.endpoint.upstreamFailures + 1);
    routes.delete(key);
  });
});

describe('the probe: terminated by the gateway, for mesh members only', () => {
  function probe(identity: TlsIdentity, path: string, agent?: https.Agent): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const options = { ...mesh(identity, GATEWAY_ID, PROBE_KEY, ['http/1.1']), host: '127.0.0.1', port: gateway.address.port, path, agent: agent ?? false };
      https
        .get(options, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        })
        .on('error', reject);
    });
  }

  test('GET /ready answers the cluster name, over one kept-alive connection', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const before = gateway.stats().probe;
    try {
      assert.deepEqual(await probe(ids.sleep, '/ready', agent), { status: 200, body: { cluster: 'cluster1', ready: true } });
      assert.deepEqual(await probe(ids.sleep, '/ready', agent), { status: 200, body: { cluster: 'cluster1', ready: true } });
      const other = await probe(ids.sleep, '/metrics', agent);
      assert.equal(other.status, 404);
      const now = gateway.stats().probe;
      assert.equal(now.connections, before.connections + 1);
      assert.equal(now.requests, before.requests + 3);
    } finally {
      agent.destroy();
    }
    assert.equal(workload.seen.every((s) => s.serverName !== PROBE_KEY), true, 'no probe went anywhere');
  });

  test('a client without a certificate, or from another trust anchor, fails the handshake', async () => {
    const before = gateway.stats().probe.handshakeFailures;
    const anonymous = { ...anchorOnlyClientOptions(ids.sleep.material().trustBundlePem, GATEWAY_ID), host: '127.0.0.1', port: gateway.address.port, servername: PROBE_KEY, path: '/ready', agent: false };
    await assert.rejects(new Promise((resolve, reject) => https.get(anonymous, resolve).on('error', reject)), /certificate required/);
    await assert.rejects(probe(ids.stranger, '/ready'));
    await eventually(() => assert.equal(gateway.stats().probe.handshakeFailures, before + 2));
  });
});

describe('refusals: nothing is forwarded, each is counted and logged with its reason', () => {
  /** Runs `attempt`, then checks the refusal was counted and logged and that no upstream got a connection. */
  async function assertRefused(reason: RefusalReason, attempt: () => Promise<unknown>, target: TestGateway = gateway): Promise<void> {
    const upstreamsBefore = [workload.connections, meshApi.connections, recorder.connections];
    const countBefore = target.stats().refused[reason];
    const logsBefore = target.logs.length;
    await attempt();
    await eventually(() => assert.equal(target.stats().refused[reason], countBefore + 1, `refused as ${reason}`));
    const line = target.logs.slice(logsBefore).find((l) => l.msg === 'refused a connection' && l.reason === reason);
    assert.ok(line, `a log line says ${reason}`);
    assert.match(String(line.peer), /^127\.0\.0\.1:\d+$/, 'the log line names the client');
    assert.deepEqual([workload.connections, meshApi.connections, recorder.connections], upstreamsBefore, 'no upstream saw a connection');
    assert.equal(recorderBytes, 0);
  }

  const send = (bytes: Buffer, end = true) => () => rawExchange(gateway.address.port, bytes, { end });

  test('an SNI for a pod that is not an exported endpoint: a TLS client learns the name is unrecognized', async () => {
    const key = endpointRouteKey('cluster1', 'sample', 'not-exported-0');
    await assertRefused('unknown-sni', () => assert.rejects(tlsCall(gateway.address.port, mesh(ids.sleep, HELLOWORLD, key)), /unrecognized name/));
    assert.match(String(gateway.logs.at(-1)!.detail), /not an endpoint of a service this cluster exports/);
  });

  test('an SNI naming another cluster, a pod IP, or something else entirely', async () => {
    await assertRefused('unknown-sni', send(clientHello([serverNameExtension(endpointRouteKey('cluster2', 'sample', 'raw-0'))])));
    assert.match(String(gateway.logs.at(-1)!.detail), /names cluster cluster2, and this is the gateway of cluster1/);
    const alert = await rawExchange(gateway.address.port, clientHello([serverNameExtension('127.0.0.5')]));
    assert.deepEqual([...alert], [21, 3, 3, 0, 2, 2, 112], 'a fatal unrecognized_name alert, then the close');
    await assertRefused('unknown-sni', send(clientHello([serverNameExtension('kubernetes.default.svc.cluster.local')])));
  });

  test('no SNI (a TLS client dialling an IP address) and an empty SNI', async () => {
    await assertRefused('no-sni', () => assert.rejects(tlsCall(gateway.address.port, clientTlsOptions(ids.sleep, HELLOWORLD))));
    await assertRefused('no-sni', send(clientHello([serverNameExtension('')])));
  });

  test('not TLS at all: plaintext HTTP, garbage', async () => {
    await assertRefused('not-tls', send(Buffer.from(`GET / HTTP/1.1\r\nHost: ${RAW_KEY}\r\n\r\n`)));
    await assertRefused('not-tls', send(Buffer.from('\x00\x01garbage garbage garbage')));
  });

  test('a malformed ClientHello and an oversize one', async () => {
    await assertRefused('malformed', send(clientHello([serverNameExtension(RAW_KEY), serverNameExtension(RAW_KEY)])));
    await assertRefused('oversize', send(records(clientHelloMessage([serverNameExtension(RAW_KEY), paddingExtension(40_000)])), false));
  });

  test('a client that closes halfway through its ClientHello', async () => {
    await assertRefused('closed-early', send(clientHello([serverNameExtension(RAW_KEY)]).subarray(0, 40)));
  });

  test('a client that never sends, or stops halfway, is cut off at the hello time-out', async () => {
    const quick = await testGateway({ cluster: 'cluster1', identity: ids.gateway, routes, helloTimeoutMs: 200 });
    try {
      await assertRefused('timeout', () => rawExchange(quick.address.port, Buffer.alloc(0), { end: false }), quick);
      const half = clientHello([serverNameExtension(RAW_KEY)]).subarray(0, 60);
      await assertRefused('timeout', () => rawExchange(quick.address.port, half, { end: false }), quick);
      assert.match(String(quick.logs.at(-1)!.detail), /no complete ClientHello within 200 ms \(60 bytes received\)/);
    } finally {
      await quick.close();
    }
  });

  test('nothing is left pending or active', async () => {
    await eventually(() => {
      const s = gateway.stats();
      assert.deepEqual([s.pending, s.endpoint.active, s.meshApi.active, s.probe.active], [0, 0, 0, 0]);
    });
  });
});
