// The Kubernetes test environment and the node agent, end to end: a real kube-apiserver (kine),
// controller-manager and scheduler from scripts/kube-env.mjs, pods created with the built kubectl
// and run as processes by `strait node`, reached at their own podIP and by Service ClusterIP.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { processStartTicks } from '../../src/runtime/processes.js';
import { eventually, KubeEnv, ROOT, run } from './kube-harness.js';

const C = 'kn1';

interface PodJson {
  metadata: { name: string; uid: string };
  status: { phase?: string; podIP?: string; hostIP?: string; containerStatuses?: { name: string; ready: boolean; restartCount: number; state: Record<string, { reason?: string; message?: string }> }[] };
}

const CONFIG_POD = `apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: s3cret}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting.txt: "hello from a configmap\\n", mode: strict}
---
apiVersion: v1
kind: Pod
metadata: {name: files, labels: {app: files}}
spec:
  containers:
  - name: main
    image: curlimages/curl
    command: [/bin/sleep, 3650d]
    env:
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: app-secret, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: app-config, key: mode}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    volumeMounts:
    - {name: config, mountPath: /etc/app}
    - {name: token, mountPath: /var/run/secrets/strait}
  volumes:
  - name: config
    configMap: {name: app-config}
  - name: token
    projected:
      sources:
      - serviceAccountToken: {audience: identity.strait.dev, expirationSeconds: 3600, path: token}
`;

function podsJson(env: KubeEnv, selector: string) {
  return env.json<{ items: PodJson[] }>(C, ['get', 'pods', '-l', selector]);
}

/** A process that has exited but is not yet reaped (a zombie) counts as gone. */
const isAlive = (pid: number) => processStartTicks(pid) !== undefined;

describe('Kubernetes test environment with the node agent', () => {
  let env: KubeEnv;

  before(async () => {
    env = await KubeEnv.up([C]);
  });
  after(async () => {
    if (!stopped) await env?.down();
    env?.remove();
  });
  let stopped = false;

  test('the node registers Ready, and renews its Lease', async () => {
    const node = await env.json<{ status: { conditions: { type: string; status: string }[]; addresses: { type: string; address: string }[] } }>(C, ['get', 'node', `${C}-node`]);
    assert.equal(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    assert.match(node.status.addresses.find((a) => a.type === 'InternalIP')!.address, /^127\.\d+\.0\.2$/);
    const lease = () => env.json<{ spec: { renewTime: string; holderIdentity: string } }>(C, ['get', 'lease', '-n', 'kube-node-lease', `${C}-node`]);
    const first = await lease();
    assert.equal(first.spec.holderIdentity, `${C}-node`);
    await eventually('a renewed Lease', async () => (await lease()).spec.renewTime !== first.spec.renewTime, 30_000);
  });

  test("the guide's helloworld and sleep run as pods with their own podIP, reached directly and by ClusterIP", async () => {
    await env.k(C, ['apply', '-f', join(ROOT, 'examples/linkerd/helloworld-cluster1.yaml'), '-f', join(ROOT, 'examples/linkerd/sleep.yaml')]);
    const ready = await eventually('helloworld and sleep Running and ready', async () => {
      const pods = (await podsJson(env, 'app in (helloworld,sleep)')).items;
      return pods.length === 2 && pods.every((p) => p.status.phase === 'Running' && p.status.containerStatuses?.every((s) => s.ready)) && pods;
    });
    const ips = ready.map((p) => p.status.podIP!);
    assert.equal(new Set(ips).size, 2, 'each pod has its own address');
    for (const ip of ips) assert.match(ip, /^127\.\d+\.\d+\.\d+$/);
    assert.ok(ready.every((p) => /^127\.\d+\.0\.2$/.test(p.status.hostIP ?? '')));
    const hello = ready.find((p) => p.metadata.name.startsWith('helloworld'))!;
    const direct = await run('curl', ['-s', '-m', '5', `http://${hello.status.podIP}:5000/hello`]);
    assert.equal(direct.stdout.trim(), `Hello version: v1, instance: ${hello.metadata.name}`);

    const clusterIP = (await env.k(C, ['get', 'svc', 'helloworld', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    const viaService = await eventually('helloworld by its ClusterIP', async () => {
      const r = await run('curl', ['-s', '-m', '5', `http://${clusterIP}:5000/hello`]);
      return r.code === 0 && r.stdout.includes('Hello version: v1') && r.stdout;
    });
    assert.match(viaService, new RegExp(hello.metadata.name));

    // strait exec runs in the pod's environment; sleep's curl reaches helloworld by ClusterIP.
    const exec = await env.strait(['exec', '--context', C, 'deploy/sleep', '--', 'sh', '-c', `echo "$POD_NAME $POD_IP"; curl -s -m 5 http://${clusterIP}:5000/hello`]);
    assert.equal(exec.code, 0, exec.stderr);
    const sleepPod = ready.find((p) => p.metadata.name.startsWith('sleep'))!;
    assert.match(exec.stdout, new RegExp(`^${sleepPod.metadata.name} ${sleepPod.status.podIP!.replace(/\./g, '\\.')}\\nHello version: v1`));
  });

  test('env from a Secret and a ConfigMap, a ConfigMap volume and a projected ServiceAccount token', async () => {
    await env.k(C, ['apply', '-f', '-'], CONFIG_POD);
    await eventually('pod files Running', async () => (await env.json<PodJson>(C, ['get', 'pod', 'files'])).status.phase === 'Running');
    const exec = await env.strait(['exec', '--context', C, 'files', '--', 'sh', '-c', 'echo "$PASSWORD $MODE $MY_IP"; cat etc/app/greeting.txt; cat var/run/secrets/strait/token']);
    assert.equal(exec.code, 0, exec.stderr);
    const [vars, greeting, token] = exec.stdout.split('\n');
    const pod = await env.json<PodJson>(C, ['get', 'pod', 'files']);
    assert.equal(vars, `s3cret strict ${pod.status.podIP}`);
    assert.equal(greeting, 'hello from a configmap');
    // The token is the API server's, for the pod, with the audience asked for: TokenReview says so.
    const reviewed = JSON.parse(
      await env.k(C, ['create', '-o', 'json', '-f', '-'], JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['identity.strait.dev'] } })),
    ) as { status: { authenticated: boolean; user: { username: string; extra: Record<string, string[]> } } };
    assert.equal(reviewed.status.authenticated, true);
    assert.equal(reviewed.status.user.username, 'system:serviceaccount:default:default');
    assert.deepEqual(reviewed.status.user.extra['authentication.kubernetes.io/pod-name'], ['files']);
  });

  test("the survey's nginx error injector runs Debian's nginx with its ConfigMap's nginx.conf, on the pod's address", async () => {
    await env.k(C, ['create', 'namespace', 'booksapp']);
    await env.k(C, ['apply', '-f', join(ROOT, 'examples/linkerd/error-injector.yaml')]);
    const pod = await eventually('error-injector ready', async () => {
      const [p] = (await env.json<{ items: PodJson[] }>(C, ['get', 'pods', '-n', 'booksapp', '-l', 'app=error-injector'])).items;
      return p?.status.containerStatuses?.[0]?.ready && p;
    });
    // A container without probes is ready once it starts, as in Kubernetes: nginx binds a moment later.
    const answer = await eventually('nginx answering', async () => {
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', `http://${pod.status.podIP}:8080/books`]);
      return r.stdout !== '000' && r.stdout;
    });
    assert.equal(answer, '500');
    const clusterIP = (await env.k(C, ['get', 'svc', '-n', 'booksapp', 'error-injector', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    const viaService = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', `http://${clusterIP}:8080/`]);
    assert.equal(viaService.stdout, '500');
  });

  test('a pod whose Secret is missing waits with CreateContainerConfigError, and starts once it exists', async () => {
    await env.k(C, ['run', 'late', '--image=curlimages/curl', '--overrides', JSON.stringify({ spec: { containers: [{ name: 'late', image: 'curlimages/curl', command: ['/bin/sleep', '3650d'], env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'late-secret', key: 'x' } } }] }] } })]);
    const waiting = await eventually('late waiting on its secret', async () => {
      const s = (await env.json<PodJson>(C, ['get', 'pod', 'late'])).status.containerStatuses?.[0]?.state.waiting;
      return s?.reason === 'CreateContainerConfigError' && s;
    });
    assert.match(waiting.message ?? '', /secret "late-secret" not found/);
    await env.k(C, ['create', 'secret', 'generic', 'late-secret', '--from-literal=x=1']);
    await eventually('late Running', async () => (await env.json<PodJson>(C, ['get', 'pod', 'late'])).status.phase === 'Running');
  });

  test('a killed container restarts; a deleted pod goes gracefully and its processes with it', async () => {
    const [pod] = (await podsJson(env, 'app=helloworld')).items;
    const record = JSON.parse(readFileSync(join(env.clusterDir(C), 'node', 'pods', 'default', pod!.metadata.name, 'helloworld.process.json'), 'utf8')) as { pid: number };
    process.kill(record.pid, 'SIGKILL');
    await eventually('restartCount 1', async () => (await env.json<PodJson>(C, ['get', 'pod', pod!.metadata.name])).status.containerStatuses?.[0]?.restartCount === 1);
    const restarted = JSON.parse(readFileSync(join(env.clusterDir(C), 'node', 'pods', 'default', pod!.metadata.name, 'helloworld.process.json'), 'utf8')) as { pid: number };
    assert.notEqual(restarted.pid, record.pid);
    await env.k(C, ['delete', 'pod', pod!.metadata.name, '--wait=true']);
    assert.equal(isAlive(restarted.pid), false, 'the deleted pod has no process left');
    // The Deployment's next pod takes its place.
    await eventually('a new helloworld pod Running', async () => {
      const pods = (await podsJson(env, 'app=helloworld')).items;
      return pods.length === 1 && pods[0]!.metadata.name !== pod!.metadata.name && pods[0]!.status.phase === 'Running';
    });
  });

  test('down stops every component and every pod process, and leaves no listener in the block', async () => {
    const state = JSON.parse(readFileSync(join(env.dir, 'kube-env.json'), 'utf8')) as { clusters: { prefix: string; processes: { component: string; pid: number }[] }[] };
    const components = state.clusters[0]!.processes;
    assert.deepEqual(components.map((p) => p.component), ['kine', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'strait-node']);
    const podsDir = join(env.clusterDir(C), 'node', 'pods');
    const podPids = (await run('sh', ['-c', `cat ${podsDir}/*/*/*.process.json`])).stdout.match(/"pid":\d+/g)!.map((m) => Number(m.slice(6)));
    assert.ok(podPids.length >= 3);
    await env.down();
    stopped = true;
    for (const pid of [...components.map((p) => p.pid), ...podPids]) assert.equal(isAlive(pid), false, `process ${pid} still runs`);
    const [a, b] = state.clusters[0]!.prefix.split('.').map(Number);
    // /proc/net/tcp writes a local IPv4 address as little-endian hex: 127.a.x.y ends in "<a><7F>".
    const suffix = `${b!.toString(16).padStart(2, '0')}${a!.toString(16).padStart(2, '0')}`.toUpperCase();
    const listening = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).filter((l) => {
      const [, local, , st] = l.trim().split(/\s+/);
      return st === '0A' && local?.split(':')[0]?.endsWith(suffix);
    });
    assert.deepEqual(listening, []);
  });
});

describe('kube-env bad input', () => {
  const script = join(ROOT, 'scripts', 'kube-env.mjs');

  test('a bad cluster name, no cluster, an unknown command', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strait-kube-bad-'));
    try {
      const bad = await run(process.execPath, [script, 'up', '--clusters', 'Bad_Name', '--dir', dir]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /"Bad_Name" is not a cluster name/);
      const none = await run(process.execPath, [script, 'up', '--dir', dir]);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /--clusters names at least one cluster/);
      const unknown = await run(process.execPath, [script, 'sideways', '--dir', dir]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /usage: node scripts\/kube-env.mjs up/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a cold cache without Go says Go is missing', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'strait-kube-cache-'));
    const dir = mkdtempSync(join(tmpdir(), 'strait-kube-nogo-'));
    try {
      const r = await run(process.execPath, [script, 'up', '--clusters', 'a', '--dir', dir], { env: { ...process.env, PATH: '/nonexistent', STRAIT_KUBE_CACHE: cache } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /Go is not installed.*Install Go 1\.26 or newer/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a cold cache on a disk without room says how much it needs', { skip: process.getuid?.() !== 0 ? 'mounting a small tmpfs needs root' : false }, async () => {
    const small = mkdtempSync(join(tmpdir(), 'strait-kube-small-'));
    const dir = mkdtempSync(join(tmpdir(), 'strait-kube-full-'));
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', small]);
    try {
      assert.equal(mounted.code, 0, mounted.stderr);
      mkdirSync(join(small, 'cache'));
      const r = await run(process.execPath, [script, 'up', '--clusters', 'a', '--dir', dir], { env: { ...process.env, STRAIT_KUBE_CACHE: join(small, 'cache') } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /needs about 6 GB free for .*has 0\.0 GB; free some space/);
    } finally {
      await run('umount', [small]);
      rmSync(small, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
