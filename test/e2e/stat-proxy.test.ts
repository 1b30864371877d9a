// The collector and the stat figures over two real Strait proxies (mTLS between them, a static
// resolver standing in for discovery): the labels the proxy writes give the figures `strait stat`
// promises, for the inbound side, the outbound side and --from.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../../src/api/kinds.js';
import { PROXY_CONTAINER } from '../../src/api/mesh.js';
import type { Resource } from '../../src/api/types.js';
import { MetricsCollector } from '../../src/control/metrics/collector.js';
import { podsOf, statRows, type StatInput } from '../../src/control/metrics/summary.js';
import { startMesh, viaProxy, type Mesh, type TestProxy } from './proxy-harness.js';

const NET = '127.93.7';

function deployment(name: string): Resource {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'sample', uid: `uid-${name}` } };
}

/** The pod object a platform would hold for this proxy's pod. */
function podOf(proxy: TestProxy, owner: Resource): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: proxy.pod, namespace: 'sample', uid: `uid-${proxy.pod}`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: owner.metadata.name, uid: owner.metadata.uid!, controller: true }] },
    spec: { containers: [{ name: 'app', image: 'x' }, { name: PROXY_CONTAINER, image: 'strait/proxy', ports: [{ name: 'admin', containerPort: proxy.ports.admin }] }] },
    status: { phase: 'Running', podIP: proxy.ip },
  } as Pod;
}

describe('stat figures from real proxies', () => {
  let mesh: Mesh;
  let collector: MetricsCollector;
  const helloworld = deployment('helloworld-v1');
  const sleep = deployment('sleep');
  let pods: Pod[];

  before(async () => {
    mesh = await startMesh(NET, (req, res) => {
      res.writeHead(req.url === '/fail' ? 500 : 200);
      res.end('Hello version: v1\n');
    });
    pods = [podOf(mesh.server, helloworld), podOf(mesh.client, sleep)];
    collector = new MetricsCollector({ pods: () => Promise.resolve(pods) });
    await collector.scrape();
    for (let i = 0; i < 9; i++) assert.equal((await viaProxy(mesh.client, 'http://helloworld/hello')).status, 200);
    assert.equal((await viaProxy(mesh.client, 'http://helloworld/fail')).status, 500);
  });

  after(async () => {
    collector.stop();
    await mesh.close();
  });

  async function input(fromPods?: Pod[]): Promise<StatInput> {
    return { cluster: 'cluster1', traffic: await collector.stats(60), pods, fromPods };
  }

  it('deploy: the server side counts the calls, a 500 as a failure, and its open mTLS connection', async () => {
    const [hw, sl] = statRows('deploy', [helloworld, sleep], await input());
    assert.deepEqual(hw!.meshed, { meshed: 1, total: 1 });
    assert.equal(hw!.figures?.responses, 10);
    assert.equal(hw!.figures?.successRate, 0.9);
    assert.ok(hw!.figures.latencyMs!.p99 > 0);
    assert.ok(hw!.figures.tcpConnections >= 1, 'the client proxy keeps a pooled connection open');
    assert.equal(sl!.figures, undefined, 'nothing called sleep');
  });

  it('svc: the client side counts the same calls by dst_service', async () => {
    const svc: Resource = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'helloworld', namespace: 'sample' } };
    const [row] = statRows('svc', [svc], await input());
    assert.equal(row!.figures?.responses, 10);
    assert.equal(row!.figures?.successRate, 0.9);
  });

  it('--from: what sleep\'s proxy sent to helloworld\'s pod', async () => {
    const [hw] = statRows('deploy', [helloworld], await input(podsOf(sleep, pods)));
    assert.equal(hw!.figures?.responses, 10);
    const [none] = statRows('deploy', [sleep], await input(podsOf(helloworld, pods)));
    assert.equal(none!.figures, undefined);
  });
});
