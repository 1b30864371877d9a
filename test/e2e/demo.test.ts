// `strait demo` as a user runs it: the real CLI, a fresh state directory, the Linkerd guide's
// scenario across two clusters, the Istio guide's across three and the Cilium blog's with affinity,
// and nothing left behind afterwards unless --keep.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { Mesh } from '../support/cli.js';

/** The answers, the summary's counts, and the first cross-cluster answer's time from a demo's output. */
function parse(stdout: string) {
  const answers = stdout.split('\n').filter((l) => l.startsWith('Hello'));
  const count = (label: string) => Number(new RegExp(`^\\s+${label}\\s+(\\d+)`, 'm').exec(stdout)?.[1]);
  return { answers, v1: count('v1'), v2: count('v2'), failed: count('failed'), firstAcross: /first cross-cluster answer after ([\d.]+) s/.exec(stdout)?.[1] };
}

/** Each round of calls in a demo's output: its answers (pod, backend label, cluster) and the summary's counts by label. */
function rounds(stdout: string) {
  const parts = stdout.split(/^answered by:$/m);
  return parts.slice(1).map((after, i) => {
    const before = parts[i]!;
    const calls = before.slice(before.lastIndexOf(' calls to '));
    const answers = [...calls.matchAll(/^(\S+)\s+(?:(v\d) in )?(cluster\d)$/gm)].map(([, pod, version, cluster]) => ({ pod: pod!, label: version ?? cluster!, cluster: cluster! }));
    const summary = after.split('\n\n')[0]!;
    const counts = Object.fromEntries([...summary.matchAll(/^\s+(\S+)\s+(\d+)/gm)].map(([, label, n]) => [label!, Number(n)]));
    return { answers, counts };
  });
}

describe('strait demo', () => {
  const meshes: Mesh[] = [];
  const fresh = () => {
    const mesh = new Mesh('strait-demo-');
    meshes.push(mesh);
    return mesh;
  };
  after(async () => {
    for (const mesh of meshes) await mesh.destroy();
  });

  it('plays the Linkerd scenario across two clusters and leaves nothing behind', async () => {
    const mesh = fresh();
    // A state directory the demo creates is one it removes.
    rmSync(mesh.home, { recursive: true });
    const r = await mesh.run(['demo']);
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const { answers, v1, v2, failed, firstAcross } = parse(r.stdout);
    assert.equal(answers.length, 20, r.stdout);
    for (const a of answers) assert.match(a, /^Hello version: (v1|v2), instance: helloworld-\1-/);
    assert.ok(answers.some((a) => a.includes('v1')) && answers.some((a) => a.includes('v2')), 'both versions answered');
    assert.equal(v1 + v2, 20);
    assert.equal(failed, 0);
    assert.equal(v1, answers.filter((a) => a.includes('v1')).length);
    assert.match(r.stdout, /helloworld-cluster1\s+-\s+100\.00%/, 'stat shows the calls that crossed');
    assert.ok(firstAcross !== undefined, 'the time to the first cross-cluster answer is printed');
    console.log(`# first cross-cluster answer after ${firstAcross} s`);
    assert.deepEqual(mesh.processes(), [], 'no process of the demo is left');
    assert.equal(existsSync(mesh.home), false, 'the state directory it made is gone');
  });

  it('plays the Istio scenario: one reviews service across three clusters, every version answering', async () => {
    const mesh = fresh();
    const r = await mesh.run(['demo', '--scenario', 'istio'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const [round, ...more] = rounds(r.stdout);
    assert.equal(more.length, 0, r.stdout);
    const { answers, counts } = round!;
    assert.equal(answers.length, 20, r.stdout);
    // reviews-vN runs only in clusterN, and the answer's pod is one of its.
    for (const a of answers) assert.match(`${a.pod} ${a.label} ${a.cluster}`, /^reviews-v(\d)-\S+ v\1 cluster\1$/);
    assert.deepEqual([...new Set(answers.map((a) => a.label))].sort(), ['v1', 'v2', 'v3'], 'every version answered');
    for (const v of ['v1', 'v2', 'v3']) assert.equal(counts[v], answers.filter((a) => a.label === v).length, `the summary counts ${v}'s answers`);
    assert.equal(counts.v1! + counts.v2! + counts.v3!, 20);
    assert.equal(counts.failed, 0);
    const firstAcross = /first cross-cluster answer after ([\d.]+) s/.exec(r.stdout)?.[1];
    assert.ok(firstAcross !== undefined, 'the time to the first cross-cluster answer is printed');
    console.log(`# istio: first cross-cluster answer after ${firstAcross} s`);
    assert.deepEqual(mesh.processes(), [], 'no process of the demo is left');
  });

  it('plays the Cilium scenario: a global service answered from both clusters, then only locally with affinity', async () => {
    const mesh = fresh();
    const r = await mesh.run(['demo', '--scenario', 'cilium'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const [global, local, ...more] = rounds(r.stdout);
    assert.equal(more.length, 0, r.stdout);
    assert.ok(global && local, r.stdout);
    const owner = new Map<string, string>();
    for (const a of [...global.answers, ...local.answers]) {
      assert.match(a.pod, /^userlist-/);
      assert.equal(owner.get(a.pod) ?? a.cluster, a.cluster, `${a.pod} is in one cluster`);
      owner.set(a.pod, a.cluster);
    }
    assert.equal(global.answers.length, 20, r.stdout);
    assert.deepEqual([...new Set(global.answers.map((a) => a.cluster))].sort(), ['cluster1', 'cluster2'], 'both clusters answered');
    assert.equal(local.answers.length, 10, r.stdout);
    assert.ok(local.answers.every((a) => a.cluster === 'cluster1'), 'with affinity local every answer stays in cluster1');
    for (const [{ answers, counts }, calls] of [[global, 20], [local, 10]] as const) {
      for (const c of ['cluster1', 'cluster2']) assert.equal(counts[c], answers.filter((a) => a.cluster === c).length, `the summary counts ${c}'s answers`);
      assert.equal(counts.cluster1! + counts.cluster2!, calls);
      assert.equal(counts.failed, 0);
    }
    assert.match(r.stdout, /annotated service\.cilium\.io\/affinity=local in cluster1/);
    const firstAcross = /first cross-cluster answer after ([\d.]+) s/.exec(r.stdout)?.[1];
    assert.ok(firstAcross !== undefined, 'the time to the first cross-cluster answer is printed');
    console.log(`# cilium: first cross-cluster answer after ${firstAcross} s`);
    assert.deepEqual(mesh.processes(), [], 'no process of the demo is left');
  });

  it('--keep leaves the clusters running until strait down, and a second demo leaves them alone', async () => {
    const mesh = fresh();
    const r = await mesh.run(['demo', '--keep']);
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /Stop everything with: strait down/);
    assert.match(await mesh.ok(['get', 'pods', '--cluster', 'cluster2']), /sleep-\S+\s+2\/2\s+Running/);

    const again = await mesh.run(['demo']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds clusters \(cluster1, cluster2\)/);
    assert.match(await mesh.ok(['get', 'pods', '--cluster', 'cluster1']), /helloworld-v1-\S+\s+2\/2\s+Running/);

    assert.match(await mesh.ok(['down']), /stopped cluster1, cluster2/);
    assert.deepEqual(mesh.processes(), []);
  });

  it('refuses an unknown scenario, naming the ones there are', async () => {
    const r = await fresh().run(['demo', '--scenario', 'nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown scenario "nope"; the scenarios are: linkerd, istio, cilium/);
  });
});
