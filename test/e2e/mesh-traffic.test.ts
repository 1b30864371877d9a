// Issue-level acceptance for the data plane in one cluster: an 80/20 TrafficSplit over 1,000 calls,
// every one mTLS between proxies (from both proxies' metrics), scaling v2 to 0 and back under
// traffic, and the proxies routing on while the control plane is dead.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { isAlive } from '../../src/runtime/home.js';
import { Mesh, waitFor } from '../support/cli.js';

const execFileP = promisify(execFile);

interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { phase?: string; podIP?: string; containerStatuses?: { ready?: boolean }[] };
}

const SLEEP_ID = 'spiffe://cluster.local/ns/sample/sa/default';
const ns = ['-n', 'sample'];

/** Sums a counter's samples whose labels include every one of `want`. */
function sum(metrics: string, name: string, want: Record<string, string>): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labels = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('data plane in one cluster', () => {
  const mesh = new Mesh();

  const pods = async (selector: string) => (await mesh.json<{ items: Pod[] }>(['get', 'pods', ...ns, '-l', selector])).items;
  const ready = (p: Pod) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready);
  const readyPods = (selector: string, n: number) =>
    waitFor(`${n} ready ${selector}`, async () => {
      const list = await pods(selector);
      return list.length === n && list.every(ready) ? list : undefined;
    }, 30_000);
  /** `n` calls from sleep through its proxy, one curl keeping its connection; one line per answer. */
  const calls = async (n: number, path = 'hello'): Promise<string[]> => {
    const out = await mesh.ok(['exec', ...ns, 'deploy/sleep', '--', 'curl', '-s', '-w', '%{http_code}\\n', `http://helloworld:5000/${path}?n=[1-${n}]`]);
    return out.split('\n').filter((l) => l !== '');
  };
  const metricsOf = async (pod: Pod) => mesh.ok(['exec', ...ns, 'deploy/sleep', '--', 'curl', '-s', `http://${pod.status!.podIP}:4191/metrics`]);

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1']);
    await mesh.ok(['apply', '-f', 'examples/strait/helloworld-split.yaml']);
    for (const sel of ['app=helloworld,version=v1', 'app=helloworld,version=v2', 'app=sleep']) await readyPods(sel, 1);
  });

  after(() => mesh.destroy());

  it('splits 1,000 calls 80/20 within 5 %, every one over mTLS with both identities recorded', async () => {
    const lines = await calls(1000);
    const v1 = lines.filter((l) => l.startsWith('Hello version: v1')).length;
    const v2 = lines.filter((l) => l.startsWith('Hello version: v2')).length;
    assert.equal(lines.filter((l) => l === '200').length, 1000, 'every call answered 200');
    assert.equal(v1 + v2, 1000);
    assert.ok(Math.abs(v1 / 1000 - 0.8) <= 0.05, `v1 got ${v1} of 1000`);

    const [sleep] = await pods('app=sleep');
    const outbound = await metricsOf(sleep!);
    const viaMtls = sum(outbound, 'request_total', { direction: 'outbound', authority: 'helloworld:5000', tls: 'true', server_id: SLEEP_ID });
    assert.equal(viaMtls, 1000, 'sleep\'s proxy sent all 1,000 over mTLS to a proxy presenting the expected identity');
    let inbound = 0;
    for (const v of ['v1', 'v2']) {
      const [pod] = await pods(`app=helloworld,version=${v}`);
      inbound += sum(await metricsOf(pod!), 'request_total', { direction: 'inbound', tls: 'true', client_id: SLEEP_ID });
    }
    assert.equal(inbound, 1000, 'the helloworld proxies received all 1,000 over mTLS from sleep\'s identity');
  });

  it('sends everything to v1 while v2 is scaled to 0, with no failed call, and v2 again once it is back', async () => {
    const during = calls(400);
    await mesh.ok(['scale', ...ns, 'deploy/helloworld-v2', '--replicas', '0']);
    const lines = await during;
    assert.deepEqual(lines.filter((l) => /^\d{3}$/.test(l) && l !== '200'), [], 'no failed call while v2 went away');
    await waitFor('v2 gone', async () => (await pods('app=helloworld,version=v2')).length === 0);
    const onlyV1 = await calls(100);
    assert.equal(onlyV1.filter((l) => l.startsWith('Hello version: v1')).length, 100);

    await mesh.ok(['scale', ...ns, 'deploy/helloworld-v2', '--replicas', '1']);
    await readyPods('app=helloworld,version=v2', 1);
    const readyAt = Date.now();
    await waitFor('v2 answering again', async () => (await calls(20)).some((l) => l.startsWith('Hello version: v2')), 10_000, 50);
    console.log(`# v2 answered ${Date.now() - readyAt} ms after its pod was reported ready`);
  });

  it('skips the share of a TrafficSplit backend that does not exist, and describe warns about it', async () => {
    await mesh.ok(['apply', ...ns, '-f', '-'], {
      input: [
        'apiVersion: v1\nkind: Service\nmetadata: {name: hello-split}\nspec: {ports: [{name: http, port: 5000}], selector: {app: helloworld}}',
        'apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {name: hello-split}\nspec:\n  service: hello-split\n  backends:\n  - {service: helloworld-v1, weight: 500m}\n  - {service: helloworld-v9, weight: 500m}',
      ].join('\n---\n'),
    });
    const out = await mesh.ok(['exec', ...ns, 'deploy/sleep', '--', 'curl', '-s', '-w', '%{http_code}\\n', 'http://hello-split:5000/hello?n=[1-40]']);
    const lines = out.split('\n');
    assert.equal(lines.filter((l) => l === '200').length, 40, out);
    assert.equal(lines.filter((l) => l.startsWith('Hello version: v1')).length, 40);
    const described = await mesh.ok(['describe', ...ns, 'trafficsplit', 'hello-split']);
    assert.match(described, /helloworld-v9.*no such service/);
    assert.match(described, /Warning: backend service "helloworld-v9" does not exist/);
  });

  it('keeps routing while the control plane is dead, and learns new endpoints when it is back', async () => {
    const [sleep] = await pods('app=sleep');
    assert.equal((await calls(5)).filter((l) => l === '200').length, 5);
    const pid = Number(readFileSync(join(mesh.home, 'clusters', 'cluster1', 'control-plane.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor('control plane gone', () => !isAlive(pid));
    // The CLI needs the control plane; the pods do not. Call through sleep's proxy as its app does, a
    // name the proxy already knows (a name it never saw cannot be resolved until the control plane is back).
    const { stdout } = await execFileP('curl', ['-s', '--max-time', '30', '-x', `http://${sleep!.status!.podIP}:4140`, '-w', '%{http_code}\\n', 'http://helloworld:5000/hello?n=[1-50]']);
    assert.equal(stdout.split('\n').filter((l) => l === '200').length, 50, 'all 50 calls succeeded with the control plane dead');

    await mesh.ok(['up']);
    await mesh.ok(['scale', ...ns, 'deploy/helloworld-v1', '--replicas', '2']);
    const v1Pods = await readyPods('app=helloworld,version=v1', 2);
    await waitFor('the new v1 pod answering', async () => {
      const answers = await calls(40);
      return v1Pods.every((p) => answers.some((l) => l.includes(p.metadata.name)));
    }, 40_000, 100);
  });
});
