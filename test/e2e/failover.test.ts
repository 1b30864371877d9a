// Failover by preference across three clusters: helloworld is global in all three, and cluster3's
// Service orders them cluster1 → cluster2 → cluster3. Under steady load from cluster3's sleep:
// cluster1's pods go away (traffic moves to cluster2), cluster3's own control plane is killed
// (what follows must need no control plane), cluster2's gateway dies (traffic moves to cluster3),
// then each comes back and traffic follows the order back. Every step's time is printed for
// docs/benchmarks.md.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { paths } from '../../src/runtime/home.js';
import { Mesh, STRAIT_BIN, waitFor } from '../support/cli.js';

const CLUSTERS = ['cluster1', 'cluster2', 'cluster3'] as const;
type Cluster = (typeof CLUSTERS)[number];
const at = (cluster: Cluster) => ['--cluster', cluster, '-n', 'sample'];

interface Pod {
  metadata: { name: string };
  status?: { phase?: string; containerStatuses?: { ready?: boolean }[] };
}

/** One call of the steady load: when it ended (ms since the epoch) and the cluster that answered (or the failure). */
interface Call {
  at: number;
  answer: Cluster | 'failed';
}

describe('failover by preference: cluster1 → cluster2 → cluster3', () => {
  const mesh = new Mesh();
  const owner = new Map<string, Cluster>();

  const readyPods = (cluster: Cluster, selector: string) =>
    waitFor(`ready ${selector} in ${cluster}`, async () => {
      const { items } = await mesh.json<{ items: Pod[] }>(['get', 'pods', '-l', selector, ...at(cluster)]);
      return items.length > 0 && items.every((p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready)) ? items : undefined;
    }, 30_000);

  const learnPods = async (cluster: Cluster) => {
    for (const pod of await readyPods(cluster, 'app=helloworld')) owner.set(pod.metadata.name, cluster);
  };

  /** Steady load from cluster3's sleep: one call every 50 ms, each line `<epoch ms> <answer>`. */
  const steadyLoad = (seconds: number) => {
    const child = spawn(process.execPath, [STRAIT_BIN, 'exec', 'deploy/sleep', ...at('cluster3'), '--', 'sh', '-c',
      `end=$(($(date +%s)+${seconds})); while [ $(date +%s) -lt $end ]; do a=$(curl -s -m 3 http://helloworld:5000/hello || echo failed); echo "$(date +%s%3N) $a"; sleep 0.05; done`], {
      env: { ...process.env, STRAIT_HOME: mesh.home },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<string>((resolve) => child.on('close', () => resolve(out)));
  };

  const parse = (out: string): Call[] =>
    out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [time, ...rest] = l.split(' ');
        const instance = /instance: (\S+)/.exec(rest.join(' '))?.[1];
        return { at: Number(time), answer: (instance && owner.get(instance)) || 'failed' };
      });

  /** When the load moved to `cluster` for good after `since`: the first call of the final run answered by it. */
  const switched = (load: Call[], since: number, until: number, cluster: Cluster): number | undefined => {
    const window = load.filter((c) => c.at >= since && c.at < until);
    let first: number | undefined;
    for (const call of window) {
      if (call.answer === cluster) first ??= call.at;
      else first = undefined;
    }
    return first;
  };

  before(async () => {
    await mesh.ok(['up', '--clusters', CLUSTERS.join(',')]);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    await mesh.ok(['connect', 'cluster1', 'cluster3']);
    await mesh.ok(['connect', 'cluster2', 'cluster3']);
    for (const cluster of CLUSTERS) await mesh.ok(['apply', '-f', 'examples/strait/helloworld-global.yaml', '--cluster', cluster]);
    await mesh.ok(['annotate', 'service', 'helloworld', ...at('cluster3'), 'strait.dev/failover=cluster1,cluster2,cluster3']);
    for (const cluster of CLUSTERS) await learnPods(cluster);
    await readyPods('cluster3', 'app=sleep');
  });

  after(() => mesh.destroy());

  it('traffic follows the preference down and back up, without cluster3\'s control plane for the middle steps', async () => {
    await waitFor('cluster1 preferred', async () => {
      const out = await mesh.ok(['exec', 'deploy/sleep', ...at('cluster3'), '--', 'curl', '-s', '-w', '\\n', 'http://helloworld:5000/hello?n=[1-10]']);
      return out.split('\n').filter((l) => l.startsWith('Hello')).every((l) => owner.get(/instance: (\S+)/.exec(l)?.[1] ?? '') === 'cluster1');
    }, 30_000);

    const loadDone = steadyLoad(45);
    const steps: { what: string; at: number; to: Cluster }[] = [];
    const step = async (what: string, to: Cluster, action: () => Promise<unknown>, settleMs: number) => {
      steps.push({ what, at: Date.now(), to });
      await action();
      await new Promise((r) => setTimeout(r, settleMs));
    };
    await new Promise((r) => setTimeout(r, 2000));
    await step("cluster1's pods scaled to 0", 'cluster2', () => mesh.ok(['scale', 'deploy/helloworld', '--replicas=0', ...at('cluster1')]), 5000);
    // From here until it is started again, cluster3 has no control plane: its proxies act alone.
    process.kill(Number(readFileSync(paths.pid(mesh.home, 'cluster3'), 'utf8')), 'SIGKILL');
    await step("cluster2's gateway stopped (cluster3's control plane dead)", 'cluster3', () => mesh.ok(['gateway', 'stop', '--cluster', 'cluster2']), 6000);
    await step("cluster2's gateway started (cluster3's control plane dead)", 'cluster2', () => mesh.ok(['gateway', 'start', '--cluster', 'cluster2']), 14_000);
    await mesh.ok(['up', '--clusters', 'cluster3']);
    await step("cluster1's pods back", 'cluster1', async () => {
      await mesh.ok(['scale', 'deploy/helloworld', '--replicas=1', ...at('cluster1')]);
      await learnPods('cluster1');
    }, 0);
    const load = parse(await loadDone);

    const failed = load.filter((c) => c.answer === 'failed').length;
    console.log(`# steady load from cluster3: ${load.length} calls, ${failed} failed`);
    for (const [i, s] of steps.entries()) {
      const until = steps[i + 1]?.at ?? Infinity;
      const moved = switched(load, s.at, until, s.to);
      console.log(`# ${s.what}: traffic on ${s.to} after ${moved === undefined ? 'never' : `${moved - s.at} ms`}`);
      assert.ok(moved !== undefined, `${s.what}: traffic never settled on ${s.to}`);
    }
    assert.ok(load.length > 200, `${load.length} calls made`);
    assert.ok(failed <= 3, `${failed} calls failed`);
  });
});
