// SCENARIOS.md S3 end to end, as the Cilium blog runs it: two clusters, namespace `song`, the
// userlist Deployment and the global, shared `userlist-svc` in both, a curl client in both (as
// `kubectl create deploy curltest`). Calls reach both clusters; affinity local/remote/none is
// flipped at run time; scaling one side to 0 under steady load fails no call; shared "false" keeps
// a cluster's pods to itself; `strait service list` shows every backend and which are preferred.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Mesh, STRAIT_BIN, waitFor } from '../support/cli.js';

const CLUSTERS = ['cluster1', 'cluster2'] as const;
type Cluster = (typeof CLUSTERS)[number];
const at = (cluster: Cluster) => ['--cluster', cluster, '-n', 'song'];
const URL = 'http://userlist-svc.song.svc:80/users/1';

interface Pod {
  metadata: { name: string };
  status?: { phase?: string; containerStatuses?: { ready?: boolean }[] };
}

describe('S3: a global service with affinity across two clusters', () => {
  const mesh = new Mesh();
  /** userlist pod name → its cluster. */
  const owner = new Map<string, Cluster>();

  const readyPods = (cluster: Cluster, selector: string) =>
    waitFor(`ready ${selector} in ${cluster}`, async () => {
      const { items } = await mesh.json<{ items: Pod[] }>(['get', 'pods', '-l', selector, ...at(cluster)]);
      return items.length > 0 && items.every((p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready)) ? items : undefined;
    }, 30_000);

  const learnPods = async () => {
    for (const cluster of CLUSTERS) for (const pod of await readyPods(cluster, 'app=userlist')) owner.set(pod.metadata.name, cluster);
  };

  /**
   * `n` calls from `from`'s curl client, one after another on one connection (or `parallel` at a
   * time): the cluster that answered each.
   */
  const calls = async (from: Cluster, n: number, parallel = 1): Promise<Cluster[]> => {
    const concurrency = parallel > 1 ? ['--parallel', '--parallel-max', String(parallel)] : [];
    const out = await mesh.ok(['exec', 'deploy/curltest', ...at(from), '--', 'curl', '-sS', ...concurrency, '-w', '\\n', `${URL}?n=[1-${n}]`]);
    // Concurrent transfers write their bodies as they come, so answers are found by their field,
    // not by line.
    return [...out.matchAll(/"podname"\s*:\s*"([^"]+)"/g)].map(([, pod]) => owner.get(pod) ?? (`unknown ${pod}` as Cluster));
  };
  const count = (answers: Cluster[], cluster: Cluster) => answers.filter((c) => c === cluster).length;

  /** Steady load from `from` in the background: one curl per call, each with its status. */
  const steadyLoad = (from: Cluster, seconds: number) => {
    const child = spawn(process.execPath, [STRAIT_BIN, 'exec', 'deploy/curltest', ...at(from), '--', 'sh', '-c',
      `end=$(($(date +%s)+${seconds})); while [ $(date +%s) -lt $end ]; do curl -s -o /dev/null -m 5 -w '%{http_code}\\n' ${URL}; sleep 0.05; done`], {
      env: { ...process.env, STRAIT_HOME: mesh.home },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<string[]>((resolve) => child.on('close', () => resolve(out.split('\n').filter((l) => l !== ''))));
  };

  before(async () => {
    await mesh.ok(['up', '--clusters', CLUSTERS.join(',')]);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    for (const cluster of CLUSTERS) {
      await mesh.ok(['create', 'namespace', 'song', '--cluster', cluster]);
      // Strait's one step beyond the blog: the namespace's workloads get the mesh's proxy.
      await mesh.ok(['annotate', 'namespace', 'song', 'linkerd.io/inject=enabled', '--cluster', cluster]);
      await mesh.ok(['apply', '-f', 'examples/cilium/userlist-deployment.yaml', ...at(cluster)]);
      await mesh.ok(['apply', '-f', 'examples/cilium/userlist-svc.yaml', ...at(cluster)]);
      await mesh.ok(['create', 'deploy', 'curltest', ...at(cluster), '--image=curlimages/curl', '--', 'sleep', '365d']);
    }
    await learnPods();
    for (const cluster of CLUSTERS) await readyPods(cluster, 'app=curltest');
  });

  after(() => mesh.destroy());

  it('calls from either cluster reach pods in both', async () => {
    for (const from of CLUSTERS) {
      const answers = await waitFor(`${from} reaching both clusters`, async () => {
        const a = await calls(from, 40);
        return count(a, 'cluster1') > 0 && count(a, 'cluster2') > 0 ? a : undefined;
      }, 30_000);
      assert.equal(count(answers, 'cluster1') + count(answers, 'cluster2'), 40, `every answer from a userlist pod: ${answers.join(',')}`);
    }
  });

  it('affinity flipped at run time: local stays local, remote prefers remote, none balances', async () => {
    const service = ['annotate', 'service', 'userlist-svc', ...at('cluster1')];
    await mesh.ok([...service, 'service.cilium.io/affinity=local', '--overwrite']);
    await waitFor('local only', async () => count(await calls('cluster1', 20), 'cluster2') === 0, 10_000);
    assert.equal(count(await calls('cluster1', 40), 'cluster1'), 40);
    const list = await mesh.ok(['service', 'list', '--cluster', 'cluster1']);
    assert.match(list, /userlist-svc/);
    assert.match(list, /cluster1\s+\S+\s+active\s+yes/);
    assert.match(list, /cluster2\s+.*active\s+no/);

    await mesh.ok([...service, 'service.cilium.io/affinity=remote', '--overwrite']);
    await waitFor('remote only', async () => count(await calls('cluster1', 20), 'cluster1') === 0, 10_000);
    assert.equal(count(await calls('cluster1', 40), 'cluster2'), 40);

    await mesh.ok([...service, 'service.cilium.io/affinity=none', '--overwrite']);
    await waitFor('both preferred', async () => /cluster2\s+.*active\s+yes/.test(await mesh.ok(['service', 'list', '--cluster', 'cluster1'])), 10_000);
    // Both endpoints are now one tier, balanced by latency and load (power of two choices over
    // EWMA): calls one at a time keep to the faster pod, with an idle one retried as its estimate
    // decays; concurrent calls spread over both.
    await waitFor('both again', async () => {
      const a = await calls('cluster1', 40, 8);
      return count(a, 'cluster1') > 0 && count(a, 'cluster2') > 0;
    }, 20_000);
  });

  it('with affinity local, scaling the local side to 0 under steady load fails over with no failed call, and comes back', async () => {
    await mesh.ok(['annotate', 'service', 'userlist-svc', ...at('cluster1'), 'service.cilium.io/affinity=local', '--overwrite']);
    await waitFor('local only', async () => count(await calls('cluster1', 20), 'cluster2') === 0, 10_000);
    const load = steadyLoad('cluster1', 10);
    await new Promise((r) => setTimeout(r, 2000));
    await mesh.ok(['scale', 'deploy/userlist', '--replicas=0', ...at('cluster1')]);
    await waitFor('remote answering', async () => count(await calls('cluster1', 10), 'cluster2') === 10, 15_000);
    const codes = await load;
    console.log(`# scale to 0 under steady load: ${codes.length} calls, ${codes.filter((c) => c !== '200').length} failed`);
    assert.ok(codes.length > 30, `${codes.length} calls made`);
    assert.deepEqual(codes.filter((c) => c !== '200'), []);
    await mesh.ok(['scale', 'deploy/userlist', '--replicas=1', ...at('cluster1')]);
    await learnPods();
    await waitFor('local again', async () => count(await calls('cluster1', 20), 'cluster1') === 20, 20_000);
    await mesh.ok(['annotate', 'service', 'userlist-svc', ...at('cluster1'), 'service.cilium.io/affinity-']);
  });

  it('shared "false" keeps cluster2\'s pods to itself, while cluster2 still uses cluster1\'s', async () => {
    await mesh.ok(['annotate', 'service', 'userlist-svc', ...at('cluster2'), 'service.cilium.io/shared=false', '--overwrite']);
    await waitFor('cluster1 no longer reaching cluster2', async () => count(await calls('cluster1', 30), 'cluster2') === 0, 10_000);
    const fromTwo = await calls('cluster2', 40);
    assert.ok(count(fromTwo, 'cluster1') > 0 && count(fromTwo, 'cluster2') > 0, `cluster2 still balances over both: ${fromTwo.join(',')}`);
    await mesh.ok(['annotate', 'service', 'userlist-svc', ...at('cluster2'), 'service.cilium.io/shared-']);
  });

  it('refuses an unknown affinity and a failover list naming a cluster twice or one that does not exist, changing nothing', async () => {
    const cases: [string, RegExp][] = [
      ['service.cilium.io/affinity=nearest', /affinity.*nearest.*local, remote, none|local\|remote\|none/],
      ['strait.dev/failover=cluster2,cluster2', /named twice/],
      ['strait.dev/failover=cluster9', /cluster9/],
    ];
    for (const [annotation, message] of cases) {
      const r = await mesh.run(['annotate', 'service', 'userlist-svc', ...at('cluster1'), annotation, '--overwrite']);
      assert.equal(r.code, 1, `${annotation}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const svc = await mesh.json<{ metadata: { annotations?: Record<string, string> } }>(['get', 'service', 'userlist-svc', ...at('cluster1')]);
    assert.equal(svc.metadata.annotations?.['service.cilium.io/affinity'], undefined);
    assert.equal(svc.metadata.annotations?.['strait.dev/failover'], undefined);
  });
});
