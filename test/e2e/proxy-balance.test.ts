// Splitting and balancing across real server pods: TrafficSplit weights (80/20 over 1,000 calls),
// backends without ready endpoints or that do not exist skipped, round-robin, peak-EWMA steering
// away from a slow endpoint, and a dead endpoint backed off with its calls retried elsewhere.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Endpoint } from '../../src/proxy/destinations.js';
import { backend, metric, scrape, spiffe, startApp, startProxy, TestPki, TestResolver, viaProxy, type TestApp, type TestProxy } from './proxy-harness.js';

const NET = '127.93.3';

interface Pod {
  version: string;
  app: TestApp;
  proxy: TestProxy;
  endpoint: Endpoint;
}

/** Calls `url` `count` times, `parallel` at a time, and counts the answers by body. */
async function tally(client: TestProxy, url: string, count: number, parallel = 10): Promise<Map<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        const answer = await viaProxy(client, url, { agent });
        const key = answer.status === 200 ? answer.body : `${answer.status} ${answer.body}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }),
  );
  agent.destroy();
  return counts;
}

describe('proxy splitting and balancing', { timeout: 60_000 }, () => {
  let pki: TestPki;
  let resolver: TestResolver;
  let client: TestProxy;
  const pods: Record<string, Pod> = {};

  before(async () => {
    pki = await TestPki.create();
    resolver = new TestResolver();
    client = await startProxy({ ip: `${NET}.1`, pod: 'sleep-7b9c8d6f5-vwxyz', identity: await pki.identity('sleep'), resolver });
    const versions: [string, number][] = [['v1', 0], ['v2', 0], ['v3', 0], ['slow', 50]];
    for (const [i, [version, delayMs]] of versions.entries()) {
      const ip = `${NET}.${i + 2}`;
      const app = await startApp(ip, (_req, res) => void setTimeout(() => res.end(version), delayMs));
      const proxy = await startProxy({ ip, pod: `helloworld-${version}-abc`, identity: await pki.identity('helloworld'), resolver });
      pods[version] = { version, app, proxy, endpoint: proxy.endpoint(app.port, spiffe('helloworld')) };
    }
  });
  after(async () => {
    await client.close();
    for (const pod of Object.values(pods)) {
      await pod.proxy.close();
      await pod.app.close();
    }
  });

  const split = (legs: { name: string; weight: number; endpoints: Endpoint[]; exists?: boolean }[], loadBalancer: 'ewma' | 'round-robin' = 'ewma') =>
    resolver.set('helloworld', {
      service: 'helloworld.sample.svc.cluster.local',
      namespace: 'sample',
      exists: true,
      ports: [],
      version: String(Date.now()),
      loadBalancer,
      backends: legs.map((l) => ({ ...backend(l.name, l.endpoints, l.weight), exists: l.exists ?? true })),
    });

  it('splits 80/20 by TrafficSplit weight over 1,000 calls (±5 %), every call over mTLS', async () => {
    split([
      { name: 'helloworld-v1', weight: 800, endpoints: [pods.v1!.endpoint] },
      { name: 'helloworld-v2', weight: 200, endpoints: [pods.v2!.endpoint] },
    ]);
    const counts = await tally(client, 'http://helloworld:5000/hello', 1000);
    const v1 = counts.get('v1') ?? 0;
    const v2 = counts.get('v2') ?? 0;
    assert.equal(v1 + v2, 1000, JSON.stringify([...counts]));
    assert.ok(Math.abs(v1 / 1000 - 0.8) <= 0.05, `v1 got ${v1} of 1000`);

    // The client proxy saw the same split, per backend and pod, with the servers' identity…
    const text = await scrape(client);
    const byBackend = (name: string) =>
      metric(text, 'response_total', { direction: 'outbound', dst_service: 'helloworld', dst_backend: name, tls: 'true', server_id: spiffe('helloworld'), classification: 'success' });
    assert.equal(byBackend('helloworld-v1'), v1);
    assert.equal(byBackend('helloworld-v2'), v2);
    // …and each server proxy saw its share arrive over mTLS from sleep's identity.
    for (const [version, expected] of [['v1', v1], ['v2', v2]] as const) {
      const served = metric(await scrape(pods[version]!.proxy), 'request_total', { direction: 'inbound', tls: 'true', client_id: spiffe('sleep'), src_cluster: 'cluster1' });
      assert.equal(served, expected, `${version}'s proxy`);
    }
  });

  it('skips a backend with no ready endpoints, and one that does not exist, without failing a call', async () => {
    split([
      { name: 'helloworld-v1', weight: 500, endpoints: [pods.v1!.endpoint] },
      { name: 'helloworld-v2', weight: 500, endpoints: [{ ...pods.v2!.endpoint, ready: false }] },
      { name: 'helloworld-gone', weight: 500, endpoints: [], exists: false },
    ]);
    assert.deepEqual([...(await tally(client, 'http://helloworld:5000/hello', 100))], [['v1', 100]]);

    // When v2 is ready again it gets its share back at once.
    split([
      { name: 'helloworld-v1', weight: 500, endpoints: [pods.v1!.endpoint] },
      { name: 'helloworld-v2', weight: 500, endpoints: [pods.v2!.endpoint] },
    ]);
    const counts = await tally(client, 'http://helloworld:5000/hello', 100);
    assert.ok((counts.get('v2') ?? 0) > 20, JSON.stringify([...counts]));
  });

  it('balances round-robin when the service asks for it', async () => {
    split([{ name: 'helloworld', weight: 1, endpoints: [pods.v1!.endpoint, pods.v2!.endpoint, pods.v3!.endpoint] }], 'round-robin');
    const counts = await tally(client, 'http://helloworld:5000/hello', 300, 1);
    assert.deepEqual(Object.fromEntries(counts), { v1: 100, v2: 100, v3: 100 });
  });

  it('steers away from a slow endpoint with peak EWMA', async () => {
    split([{ name: 'helloworld', weight: 1, endpoints: [pods.v3!.endpoint, pods.slow!.endpoint] }]);
    const counts = await tally(client, 'http://helloworld:5000/hello', 60, 1);
    assert.ok((counts.get('slow') ?? 0) <= 3, JSON.stringify([...counts]));
  });

  it('backs off an endpoint it cannot connect to and retries the call on another', async () => {
    const dead: Endpoint = { ...pods.v1!.endpoint, address: `${NET}.99`, proxy: { host: `${NET}.99`, port: 9 }, pod: 'helloworld-dead-abc' };
    split([{ name: 'helloworld', weight: 1, endpoints: [dead, pods.v1!.endpoint] }], 'round-robin');
    assert.deepEqual([...(await tally(client, 'http://helloworld:5000/hello', 40, 4))], [['v1', 40]]);
    const config = JSON.parse(await scrape(client, '/config')) as { destinations: { authority: string; backends: { endpoints: { pod: string; failures: number; backoffMs: number }[] }[] }[] };
    const endpoints = config.destinations.find((d) => d.authority === 'helloworld:5000')!.backends[0]!.endpoints;
    const deadState = endpoints.find((e) => e.pod === 'helloworld-dead-abc')!;
    assert.ok(deadState.failures >= 1 && deadState.backoffMs > 0, JSON.stringify(deadState));
    assert.ok(client.logs.some((l) => l.includes('connect failed; trying another endpoint')));
  });
});
