// Strait on one real Kubernetes cluster, as issue "Strait on a real Kubernetes cluster" accepts it:
// `strait install`, then with the built kubectl the 2.14 guide's namespace annotated
// linkerd.io/inject=enabled, helloworld v1 and v2 and sleep — injected by the real admission
// webhook (2/2), given certificates through TokenReview, called over mTLS; `strait check` passes;
// and the control-plane pod deleted under steady load fails no call.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, KubeEnv, ROOT, run, STRAIT } from './kube-harness.js';

const C = 'solo';
const NS = 'sample';

interface PodJson {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { initContainers?: { name: string }[]; containers: { name: string }[] };
  status: { phase?: string; podIP?: string; containerStatuses?: { ready: boolean }[]; initContainerStatuses?: { ready: boolean }[] };
}

/** READY as kubectl counts it: app containers and native sidecars. */
const readyCount = (p: PodJson) => {
  const all = [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])];
  return `${all.filter((s) => s.ready).length}/${(p.spec.initContainers?.length ?? 0) + p.spec.containers.length}`;
};

/** `n` calls from sleep's pod through its proxy; each prints its answer, then a line `= STATUS`. */
const CALLS = (n: number, pause = '0') => `i=0; while [ $i -lt ${n} ]; do curl -s -m 5 -w '\\n= %{http_code}\\n' http://helloworld:5000/hello || echo '= failed'; i=$((i+1)); sleep ${pause}; done`;

/** The status of every call, and the answers' lines. */
function calls(out: string): { statuses: string[]; answers: string[] } {
  const lines = out.split('\n');
  return { statuses: lines.filter((l) => l.startsWith('= ')).map((l) => l.slice(2)), answers: lines.filter((l) => l.startsWith('Hello version: ')) };
}

describe('Strait on one Kubernetes cluster', () => {
  let env: KubeEnv;
  const pods = () => env.json<{ items: PodJson[] }>(C, ['get', 'pods', '-n', NS]);
  const exec = (script: string) => env.strait(['exec', '--context', C, '-n', NS, 'deploy/sleep', '--', 'sh', '-c', script]);

  before(async () => {
    env = await KubeEnv.up([C]);
  });
  after(async () => {
    await env?.down();
    env?.remove();
  });

  test('install, then the guide’s YAML through kubectl: every pod 2/2 Running with its own podIP', async () => {
    const install = await env.strait(['install', '--context', C]);
    assert.equal(install.code, 0, install.stderr);
    // As `linkerd check` after an install: it waits until the control plane is ready and the webhook answers.
    const check = await env.strait(['check', '--context', C, '--wait', '90s']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /√ the proxy injector webhook answers/);
    assert.equal((await env.json<{ status: { readyReplicas?: number } }>(C, ['get', 'deploy', '-n', 'strait-system', 'strait-control-plane'])).status.readyReplicas, 1);
    await env.k(C, ['create', 'namespace', NS]);
    await env.k(C, ['annotate', 'namespace', NS, 'linkerd.io/inject=enabled']);
    await env.k(C, ['apply', '-n', NS, '-f', join(ROOT, 'examples/linkerd/2.14/helloworld-v1.yaml'), '-f', join(ROOT, 'examples/linkerd/2.14/helloworld-v2.yaml'), '-f', join(ROOT, 'examples/linkerd/sleep.yaml')]);
    const ready = await eventually('three pods 2/2 Running', async () => {
      const items = (await pods()).items;
      return items.length === 3 && items.every((p) => p.status.phase === 'Running' && readyCount(p) === '2/2') && items;
    }, 90_000);
    assert.equal(new Set(ready.map((p) => p.status.podIP)).size, 3, 'each pod has its own address');
    const table = await env.k(C, ['get', 'pods', '-n', NS]);
    assert.equal(table.split('\n').filter((l) => /\s2\/2\s+Running\s/.test(l)).length, 3, table);
  });

  test('100 calls from sleep are all answered, by both versions, over mTLS with each side’s identity', async () => {
    const r = await exec(CALLS(100));
    assert.equal(r.code, 0, r.stderr);
    const { statuses, answers } = calls(r.stdout);
    assert.equal(statuses.length, 100);
    assert.deepEqual(statuses.filter((s) => s !== '200'), []);
    const v1 = answers.filter((l) => l.startsWith('Hello version: v1')).length;
    const v2 = answers.filter((l) => l.startsWith('Hello version: v2')).length;
    assert.equal(v1 + v2, 100);
    // One call at a time, P2C over peak EWMA favours whichever pod answers faster, as Linkerd's
    // balancer does (a noisy machine gave 91/9): both must answer, the split is the balancer's.
    assert.ok(v1 > 0 && v2 > 0, `v1 ${v1}, v2 ${v2}`);
    // The servers' proxies saw the calls over mTLS, from sleep's own identity.
    const servers = (await pods()).items.filter((p) => p.metadata.labels?.app === 'helloworld');
    let inbound = 0;
    for (const pod of servers) {
      const metrics = (await run('curl', ['-s', `http://${pod.status.podIP}:4191/metrics`])).stdout;
      for (const line of metrics.split('\n')) {
        if (!line.startsWith('request_total{') || !line.includes('direction="inbound"')) continue;
        assert.match(line, /tls="true"/);
        assert.match(line, /client_id="spiffe:\/\/cluster\.local\/ns\/sample\/sa\/default"/);
        inbound += Number(line.split(' ').at(-1));
      }
    }
    assert.ok(inbound >= 100, `the servers' proxies counted ${inbound} inbound requests`);
  });

  test('strait stat, get, service list and logs read the cluster with --context', async () => {
    // The control plane's collector reads the proxies every few seconds: the calls show within a scrape or two.
    const stat = await eventually('stat showing the calls', async () => {
      const r = await env.strait(['stat', '--context', C, 'deploy', '-n', NS, '-o', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const rows = JSON.parse(r.stdout) as { name: string; meshed?: { meshed: number; total: number }; figures?: { successRate?: number; requestsPerSecond: number } }[];
      const hello = rows.filter((row) => row.name.startsWith('helloworld-'));
      return hello.length === 2 && hello.every((row) => row.figures?.successRate === 1 && row.figures.requestsPerSecond > 0) && rows;
    }, 30_000);
    assert.deepEqual(stat.map((row) => [row.name, row.meshed]).sort(), [['helloworld-v1', { meshed: 1, total: 1 }], ['helloworld-v2', { meshed: 1, total: 1 }], ['sleep', { meshed: 1, total: 1 }]]);
    const table = await env.strait(['stat', '--context', C, 'deploy', '-n', NS]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME\s+MESHED\s+SUCCESS\s+RPS\s+LATENCY_P50/);
    assert.match(table.stdout, /\nhelloworld-v1\s+1\/1\s+100\.00%\s+\d/);

    const get = await env.strait(['get', 'pods', '--context', C, '-n', NS]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.split('\n').filter((l) => /^(helloworld-v[12]|sleep)-\S+\s+2\/2\s+Running\s/.test(l)).length, 3, get.stdout);
    const services = await env.strait(['service', 'list', '--context', C, '-n', NS]);
    assert.equal(services.code, 0, services.stderr);
    assert.match(services.stdout, /sample\s+helloworld\s+local\s+helloworld\.sample\.svc\.cluster\.local:5000/);
    const logs = await env.strait(['logs', '--context', C, '-n', NS, 'deploy/helloworld-v1', '-c', 'strait-proxy', '--tail', '50']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /workload certificate issued/);
    const app = await env.strait(['logs', '--context', C, '-n', NS, 'deploy/helloworld-v1']);
    assert.equal(app.code, 0, app.stderr);
    assert.match(app.stdout, /^helloworld v1 listening on 127\.\d+\.\d+\.\d+:5000/, 'the first app container, as kubectl logs picks');

    const unknown = await env.strait(['get', 'pods', '--context', 'nowhere']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /context "nowhere" is not in .*\n\s+its contexts: solo/);
    for (const args of [['check', '--context', C, '--wait', 'soon'], ['check', '--wait', '5s']]) {
      const r = await env.strait(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /--wait/);
    }
    const both = await env.strait(['get', 'pods', '--context', C, '--cluster', 'cluster1']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give one of them/);
  });

  test('strait check --context passes', async () => {
    const r = await env.strait(['check', '--context', C]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /√ the proxy injector webhook answers/);
    assert.match(r.stdout, /√ data plane proxies are ready\n\s+\* 3 meshed pods/);
  });

  test('the control-plane pod deleted under steady load: no call fails, and the new one serves the proxies', async () => {
    const [old] = (await env.json<{ items: PodJson[] }>(C, ['get', 'pods', '-n', 'strait-system'])).items;
    const load = spawn(process.execPath, [STRAIT, 'exec', '--context', C, '-n', NS, 'deploy/sleep', '--', 'sh', '-c', CALLS(150, '0.05')], { env: { ...process.env, KUBECONFIG: env.kubeconfig } });
    let out = '';
    load.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const finished = new Promise<number>((resolve) => load.on('exit', (code) => resolve(code ?? 1)));
    await eventually('calls under way', () => Promise.resolve(calls(out).statuses.length > 10));
    await env.k(C, ['delete', 'pod', '-n', 'strait-system', old!.metadata.name, '--wait=true']);
    const fresh = await eventually('a new control-plane pod ready', async () => {
      const [p] = (await env.json<{ items: PodJson[] }>(C, ['get', 'pods', '-n', 'strait-system'])).items;
      return p && p.metadata.name !== old!.metadata.name && readyCount(p) === '1/1' && p;
    }, 60_000);
    assert.equal(await finished, 0);
    const { statuses } = calls(out);
    assert.equal(statuses.length, 150);
    assert.deepEqual(statuses.filter((s) => s !== '200'), [], 'no call failed');

    // It resyncs: a pod started after the restart is learned from the new control plane.
    await env.k(C, ['scale', 'deploy', '-n', NS, 'helloworld-v2', '--replicas=2']);
    const added = await eventually('a second v2 pod 2/2', async () => {
      const v2 = (await pods()).items.filter((p) => p.metadata.labels?.version === 'v2');
      return v2.length === 2 && v2.every((p) => readyCount(p) === '2/2') && v2;
    }, 60_000);
    const names = new Set(added.map((p) => p.metadata.name));
    await eventually('both v2 pods answering', async () => {
      const answers = (await exec(CALLS(30))).stdout;
      return [...names].every((n) => answers.includes(n));
    }, 60_000);
    assert.ok(fresh.status.podIP);
  });
});
