// `strait stat` over real meshed pods: helloworld v1 and v2 behind a TrafficSplit, sleep calling
// through its proxy, and the figures every view gives for exactly those calls.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StatRow } from '../../src/control/metrics/summary.js';
import { Mesh, waitFor } from '../support/cli.js';

const CALLS = 40;


interface PodList {
  items: { status?: { phase?: string; containerStatuses?: { ready?: boolean }[] } }[];
}

const total = (rows: StatRow[]) => rows.reduce((n, r) => n + (r.figures?.responses ?? 0), 0);
const row = (rows: StatRow[], name: string, leaf?: string) => rows.find((r) => r.name === name && (leaf === undefined || r.leaf === leaf));

describe('strait stat over meshed pods', () => {
  const mesh = new Mesh('strait-stat-proxy-');
  const ns = ['-n', 'sample'];
  let okCalls = 0;

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1']);
    // helloworld v1 and v2 behind an 80/20 split, and sleep, in the meshed namespace sample.
    await mesh.ok(['apply', '-f', 'examples/strait/helloworld-split.yaml']);
    await waitFor(
      'three meshed pods ready (app and proxy)',
      async () => {
        const pods = (await mesh.json<PodList>(['get', 'pods', ...ns])).items;
        return pods.length === 3 && pods.every((p) => p.status?.phase === 'Running' && p.status.containerStatuses?.length === 2 && p.status.containerStatuses.every((c) => c.ready));
      },
      30_000,
      200,
    );
    const urls = new Array<string>(CALLS).fill('http://helloworld:5000/hello');
    const out = await mesh.ok(['exec', 'deploy/sleep', ...ns, '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}\\n', ...urls]);
    okCalls = out.split('\n').filter((code) => code === '200').length;
    assert.equal(okCalls, CALLS, `every call answered 200: ${out}`);
  });

  after(async () => {
    await mesh.destroy();
  });

  it('deploy: each helloworld deployment shows the calls it served, all successful; sleep served none', async () => {
    const rows = await mesh.json<StatRow[]>(['stat', 'deploy', ...ns]);
    assert.equal(total(rows), CALLS);
    for (const name of ['helloworld-v1', 'helloworld-v2', 'sleep']) assert.deepEqual(row(rows, name)?.meshed, { meshed: 1, total: 1 }, name);
    assert.equal(row(rows, 'helloworld-v1')?.figures?.successRate, 1);
    assert.equal(row(rows, 'sleep')?.figures?.responses ?? 0, 0);
    const table = await mesh.ok(['stat', 'deploy', ...ns]);
    assert.match(table, /^helloworld-v1\s+1\/1\s+100\.00%\s+\d+\.\drps\s+\S+ms\s+\S+ms\s+\S+ms\s+\d+$/m);
  });

  it('--from deploy/sleep: the same calls, counted by sleep\'s proxy', async () => {
    const rows = await mesh.json<StatRow[]>(['stat', 'deploy', ...ns, '--from', 'deploy/sleep']);
    assert.equal(total(rows), CALLS);
  });

  it('svc and trafficsplit: by the backend each call went to, with the split\'s weights', async () => {
    const services = await mesh.json<StatRow[]>(['stat', 'svc', ...ns]);
    assert.equal((row(services, 'helloworld-v1')?.figures?.responses ?? 0) + (row(services, 'helloworld-v2')?.figures?.responses ?? 0), CALLS);
    const legs = await mesh.json<StatRow[]>(['stat', 'ts', ...ns]);
    const v1 = row(legs, 'helloworld', 'helloworld-v1')!;
    const v2 = row(legs, 'helloworld', 'helloworld-v2')!;
    assert.deepEqual([v1.apex, v1.weight, v2.weight], ['helloworld', 80, 20]);
    assert.equal((v1.figures?.responses ?? 0) + (v2.figures?.responses ?? 0), CALLS);
    assert.ok((v1.figures?.responses ?? 0) > (v2.figures?.responses ?? 0), 'an 80/20 split sends most calls to v1');
  });
});
