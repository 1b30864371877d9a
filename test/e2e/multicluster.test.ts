// SCENARIOS.md S1 and S6 end to end: two clusters linked both ways with the Linkerd guide's YAML,
// the mirror, a 50/50 TrafficSplit across clusters through cluster1's gateway, stat and gateways,
// the 2.14 guide's variant (an injected namespace, quantity weights), unexport under load with no
// failed call, and cluster1's gateway dying and coming back under steady load.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { AdminClient } from '../../src/control/admin-client.js';
import { paths } from '../../src/runtime/home.js';
import { Mesh, STRAIT_BIN, waitFor } from '../support/cli.js';

interface Pod {
  metadata: { name: string };
  status?: { phase?: string; podIP?: string; containerStatuses?: { ready?: boolean }[] };
}

const c1 = ['--cluster', 'cluster1'];
const c2 = ['--cluster', 'cluster2'];

describe('S1 and S6: a mirrored service and a 50/50 split across two clusters', () => {
  const mesh = new Mesh();

  const readyPods = (cluster: string[], selector: string) =>
    waitFor(`ready ${selector}`, async () => {
      const { items } = await mesh.json<{ items: Pod[] }>(['get', 'pods', '-l', selector, ...cluster]);
      return items.length > 0 && items.every((p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready)) ? items : undefined;
    }, 30_000);

  /** `n` calls from cluster2's sleep on one connection: each answer line, then its status code line. */
  const calls = async (n: number, namespace = 'default'): Promise<{ answers: string[]; codes: string[] }> => {
    const out = await mesh.ok(['exec', 'deploy/sleep', ...c2, '-n', namespace, '--', 'curl', '-s', '-w', '%{http_code}\\n', `http://helloworld:5000/hello?n=[1-${n}]`]);
    const lines = out.split('\n').filter((l) => l !== '');
    return { answers: lines.filter((l) => l.startsWith('Hello')), codes: lines.filter((l) => /^\d{3}$/.test(l)) };
  };

  /** Steady load from sleep in cluster2 in the background: one curl per call, each with its status. */
  const steadyLoad = (seconds: number) => {
    const child = spawn(process.execPath, [STRAIT_BIN, 'exec', 'deploy/sleep', ...c2, '--', 'sh', '-c',
      `end=$(($(date +%s)+${seconds})); while [ $(date +%s) -lt $end ]; do curl -s -o /dev/null -m 5 -w '%{http_code}\\n' http://helloworld:5000/hello; sleep 0.05; done`], {
      env: { ...process.env, STRAIT_HOME: mesh.home },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<string[]>((resolve) => child.on('close', () => resolve(out.split('\n').filter((l) => l !== ''))));
  };

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1,cluster2']);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    // The export's moment is when cluster1's store holds it; both stores are watched every 10 ms
    // over their admin sockets, so neither CLI start-up counts.
    const store1 = new AdminClient(paths.socket(mesh.home, 'cluster1'), 'cluster1');
    const store2 = new AdminClient(paths.socket(mesh.home, 'cluster2'), 'cluster2');
    const exported = waitFor('helloworld in cluster1', async () => ((await store1.get({ kind: 'Service', namespace: 'default', name: 'helloworld' })) ? Date.now() : undefined), 30_000, 10);
    const mirrored = waitFor('helloworld-cluster1 in cluster2', async () => ((await store2.get({ kind: 'Service', namespace: 'default', name: 'helloworld-cluster1' })) ? Date.now() : undefined), 30_000, 10);
    await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster1.yaml', ...c1]);
    const exportToMirror = (await mirrored) - (await exported);
    console.log(`# the mirror appeared in cluster2 ${exportToMirror} ms after the export was stored in cluster1`);
    assert.ok(exportToMirror <= 1000, `mirror within 1 s of the export, took ${exportToMirror} ms`);
    assert.match(await mesh.ok(['get', 'svc', ...c2]), /helloworld-cluster1/);
    await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster2.yaml', ...c2]);
    await readyPods(c1, 'app=helloworld');
    await readyPods(c2, 'app=helloworld');
    await readyPods(c2, 'app=sleep');
  });

  after(() => mesh.destroy());

  it('answers from v1 in cluster1 and v2 in cluster2, about half each over 100 calls', async () => {
    await waitFor('cluster1 reachable through its gateway', async () => (await calls(10)).answers.some((a) => a.includes('v1')), 15_000);
    const { answers, codes } = await calls(100);
    assert.equal(codes.filter((c) => c === '200').length, 100);
    const v1 = answers.filter((a) => /^Hello version: v1, instance: helloworld-v1-/.test(a)).length;
    const v2 = answers.filter((a) => /^Hello version: v2, instance: helloworld-v2-/.test(a)).length;
    assert.equal(v1 + v2, 100);
    assert.ok(v1 >= 30 && v1 <= 70, `v1 answered ${v1} of 100`);
  });

  it('shows the remote cluster synced, its gateway alive, every check passing, and stat for the mirror', async () => {
    const check = await mesh.ok(['check', '--multicluster', ...c2]);
    assert.doesNotMatch(check, /×/);
    assert.match(check, /Status check results are √/);
    assert.match(await mesh.ok(['remote-clusters', ...c2]), /cluster1\s+\S+:4143\s+synced\s+1/);
    assert.match(await mesh.ok(['gateways', ...c2]), /cluster1\s+True\s+1/);
    const stat = await mesh.ok(['stat', 'svc', ...c2]);
    assert.match(stat, /helloworld-cluster1\s+-\s+100\.00%/);
    assert.match(await mesh.ok(['stat', 'trafficsplit', ...c2]), /helloworld-cluster1/);
  });

  it('S6: a dead gateway is out of rotation within 3 s, calls keep succeeding, and it recovers by itself', async () => {
    const load = steadyLoad(14);
    await new Promise((r) => setTimeout(r, 3000));
    const stoppedAt = Date.now();
    await mesh.ok(['gateway', 'stop', ...c1]);
    await waitFor('cluster1 not alive', async () => (await mesh.ok(['gateways', ...c2])).match(/cluster1\s+False/), 10_000, 100);
    console.log(`# cluster1's gateway was reported dead ${Date.now() - stoppedAt} ms after it stopped`);
    await new Promise((r) => setTimeout(r, 3000));
    await mesh.ok(['gateway', 'start', ...c1]);
    await waitFor('cluster1 alive again', async () => (await mesh.ok(['gateways', ...c2])).match(/cluster1\s+True/), 15_000, 100);
    const codes = await load;
    const failed = codes.filter((c) => c !== '200');
    console.log(`# steady load: ${codes.length} calls, ${failed.length} failed (in flight when the gateway died)`);
    assert.ok(codes.length > 50, `${codes.length} calls made`);
    assert.ok(failed.length <= 3, `failed calls are bounded by those in flight at the kill: ${failed.join(',')}`);
    await waitFor('v1 answering again', async () => (await calls(20)).answers.some((a) => a.includes('v1')), 15_000);
  });

  it('the 2.14 guide: an injected namespace, the generated YAML, quantity weights', async () => {
    const sample = ['-n', 'sample'];
    for (const cluster of [c1, c2]) {
      await mesh.ok(['create', 'namespace', 'sample', ...cluster]);
      await mesh.ok(['annotate', 'namespace', 'sample', 'linkerd.io/inject=enabled', ...cluster]);
    }
    await mesh.ok(['apply', '-f', 'examples/linkerd/2.14/helloworld-v1.yaml', ...sample, ...c1]);
    await mesh.ok(['label', 'svc', 'helloworld', 'mirror.linkerd.io/exported=true', ...sample, ...c1]);
    await mesh.ok(['apply', '-f', 'examples/linkerd/2.14/helloworld-v2.yaml', ...sample, ...c2]);
    await mesh.ok(['apply', '-f', 'examples/istio/sleep.yaml', ...sample, ...c2]);
    await mesh.ok(['apply', '-f', 'examples/linkerd/2.14/trafficsplit.yaml', ...sample, ...c2]);
    await waitFor('the sample mirror', async () => (await mesh.ok(['get', 'svc', ...sample, ...c2])).includes('helloworld-cluster1'), 10_000, 100);
    await readyPods([...c2, ...sample], 'app=sleep');
    assert.match(await mesh.ok(['get', 'pods', '-l', 'app=sleep', ...sample, ...c2]), /2\/2\s+Running/);
    await waitFor('v1 answering in sample', async () => (await calls(10, 'sample')).answers.some((a) => a.includes('v1')), 30_000);
    const { answers, codes } = await calls(100, 'sample');
    assert.equal(codes.filter((c) => c === '200').length, 100);
    const v1 = answers.filter((a) => /^Hello version: v1, instance: helloworld-v1-/.test(a)).length;
    assert.ok(v1 >= 30 && v1 <= 70, `v1 answered ${v1} of 100`);
  });

  it('removing the export label under load removes the mirror, the split sends everything to what is left, and no call fails', async () => {
    const load = steadyLoad(8);
    await new Promise((r) => setTimeout(r, 2000));
    await mesh.ok(['label', 'svc', 'helloworld', 'mirror.linkerd.io/exported-', ...c1]);
    await waitFor('mirror gone', async () => !(await mesh.ok(['get', 'svc', ...c2])).includes('helloworld-cluster1'), 10_000, 50);
    const codes = await load;
    console.log(`# unexport under steady load: ${codes.length} calls, ${codes.filter((c) => c !== '200').length} failed`);
    assert.ok(codes.length > 30, `${codes.length} calls made`);
    assert.deepEqual(codes.filter((c) => c !== '200'), []);
    const { answers, codes: after } = await calls(50);
    assert.equal(after.filter((c) => c === '200').length, 50);
    assert.equal(answers.filter((a) => a.includes('v2')).length, 50);
  });
});
