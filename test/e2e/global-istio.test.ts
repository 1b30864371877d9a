// SCENARIOS.md S2 end to end, as the Istio guide runs it: three clusters under namespace sameness,
// namespace `sample` labelled istio-injection=enabled in each, the bookinfo `reviews` Service in
// every cluster and reviews-v1/v2/v3 one per cluster, applied from the guide's YAML by selector;
// sleep in cluster3 reaches all three versions by the one name; remote-clusters lists the others as
// synced; removing `sample` everywhere and `strait down` leave nothing running.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, waitFor } from '../support/cli.js';

const CLUSTERS = ['cluster1', 'cluster2', 'cluster3'];
const at = (cluster: string) => ['--cluster', cluster, '-n', 'sample'];

interface Pod {
  metadata: { name: string };
  status?: { phase?: string; containerStatuses?: { ready?: boolean }[] };
}

describe('S2: one reviews service across three clusters', () => {
  const mesh = new Mesh();

  const ready = (cluster: string, selector: string) =>
    waitFor(`ready ${selector} in ${cluster}`, async () => {
      const { items } = await mesh.json<{ items: Pod[] }>(['get', 'pods', '-l', selector, ...at(cluster)]);
      return items.length > 0 && items.every((p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready)) ? items : undefined;
    }, 30_000);

  /** `n` calls from cluster3's sleep on one connection; the podname of each answer. */
  const calls = async (n: number): Promise<string[]> => {
    const out = await mesh.ok(['exec', 'deploy/sleep', ...at('cluster3'), '--', 'curl', '-s', '-w', '\\n', `http://reviews:9080/reviews/1?n=[1-${n}]`]);
    return out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { podname: string }).podname);
  };

  before(async () => {
    await mesh.ok(['up', '--clusters', CLUSTERS.join(','), '--sameness']);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    await mesh.ok(['connect', 'cluster1', 'cluster3']);
    await mesh.ok(['connect', 'cluster2', 'cluster3']);
    for (const [i, cluster] of CLUSTERS.entries()) {
      await mesh.ok(['create', 'namespace', 'sample', '--cluster', cluster]);
      await mesh.ok(['label', 'namespace', 'sample', 'istio-injection=enabled', '--cluster', cluster]);
      // As the guide: `kubectl apply -f bookinfo.yaml -l service=reviews`, `-l account=reviews`, `-l app=reviews,version=vN`.
      for (const selector of ['service=reviews', 'account=reviews', `app=reviews,version=v${i + 1}`]) {
        await mesh.ok(['apply', '-f', 'examples/istio/bookinfo.yaml', '-l', selector, ...at(cluster)]);
      }
    }
    await mesh.ok(['apply', '-f', 'examples/istio/sleep.yaml', ...at('cluster3')]);
    for (const [i, cluster] of CLUSTERS.entries()) await ready(cluster, `app=reviews,version=v${i + 1}`);
    await ready('cluster3', 'app=sleep');
  });

  after(() => mesh.destroy());

  it('sleep in cluster3 reaches reviews v1, v2 and v3 by the one name', async () => {
    const pods = new Map<string, string>();
    for (const [i, cluster] of CLUSTERS.entries()) {
      const [pod] = await ready(cluster, `app=reviews,version=v${i + 1}`);
      pods.set(pod!.metadata.name, cluster);
    }
    const seen = await waitFor('every version answering', async () => {
      const answered = new Set((await calls(30)).map((p) => pods.get(p)));
      return answered.size === 3 ? answered : undefined;
    }, 30_000);
    assert.deepEqual([...seen].sort(), CLUSTERS);
    const podnames = await calls(90);
    assert.equal(podnames.length, 90, 'every call answered');
    // How 90 calls one after another spread is the balancer's business (peak-EWMA keeps to the
    // fastest endpoints while they stay fast); that every one came from a reviews pod is the point.
    assert.ok(podnames.every((p) => pods.has(p)), `every answer from a reviews pod: ${podnames.join(',')}`);
    console.log(`# 90 calls from cluster3: ${CLUSTERS.map((c) => `${c} ${podnames.filter((p) => pods.get(p) === c).length}`).join(', ')}`);
  });

  it('remote-clusters in cluster1 lists the other two as synced', async () => {
    const out = await mesh.ok(['remote-clusters', '--cluster', 'cluster1']);
    assert.match(out, /cluster2\s+\S+:4143\s+synced/);
    assert.match(out, /cluster3\s+\S+:4143\s+synced/);
  });

  it('removing the sample namespace everywhere and strait down leave nothing running', async () => {
    for (const cluster of CLUSTERS) await mesh.ok(['delete', 'namespace', 'sample', '--cluster', cluster]);
    for (const cluster of CLUSTERS) {
      await waitFor(`no pods in ${cluster}`, async () => (await mesh.json<{ items: Pod[] }>(['get', 'pods', ...at(cluster)])).items.length === 0, 20_000);
    }
    await mesh.ok(['down']);
    await waitFor('no process left', () => mesh.processes().length === 0, 10_000);
  });
});
