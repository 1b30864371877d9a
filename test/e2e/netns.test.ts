// S1 with each cluster in its own network namespace, as on two machines: ns-c1 and ns-c2 hang off a
// bridge (in a third namespace that plays the network between them) as 10.199.0.1 and 10.199.0.2,
// and each one's firewall lets in only loopback, replies, and TCP to its gateway port. The clusters
// run with --gateway-address on those addresses, so when the mirror appears and sleep in cluster2
// gets answers from v1 in cluster1, every cross-cluster byte went through cluster1's gateway.
//
// Needs root, `ip netns` and iptables; skipped with the reason elsewhere. The admin API is a Unix
// socket in STRAIT_HOME, so every command but `up` and `exec` runs in this test's own namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { PROXY_PORTS } from '../../src/api/mesh.js';
import { clusterAddresses, CONTROL_PLANE_PORT } from '../../src/runtime/addresses.js';
import { readMesh } from '../../src/runtime/home.js';
import { Mesh, STRAIT_BIN, waitFor, type RunResult } from '../support/cli.js';

const PREFIX = 'strait-e2e-';
const NS = { net: `${PREFIX}net-${process.pid}`, c1: `${PREFIX}c1-${process.pid}`, c2: `${PREFIX}c2-${process.pid}` };
const ADDRESS = { c1: '10.199.0.1', c2: '10.199.0.2' };
const GATEWAY_PORT = 4143;
/** Stands for anything in cluster1's namespace that listens on every address, as a careless pod would. */
const OTHER_PORT = 9090;

function sh(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function trySh(file: string, args: string[]): string | undefined {
  try {
    sh(file, args);
    return undefined;
  } catch (err) {
    return ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
  }
}

function has(command: string): boolean {
  return trySh('sh', ['-c', `command -v ${command}`]) === undefined;
}

/** Why this machine cannot run the test, or nothing. */
function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are a Linux feature';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces and firewall rules';
  if (!has('ip')) return 'the `ip` command (iproute2) is not installed';
  if (!has('iptables')) return 'the `iptables` command is not installed';
  const probe = `${PREFIX}probe-${process.pid}`;
  const failed = trySh('ip', ['netns', 'add', probe]);
  if (failed !== undefined) return `\`ip netns add\` fails here: ${failed}`;
  const noFirewall = trySh('ip', ['netns', 'exec', probe, 'iptables', '-w', '-L', 'INPUT']);
  trySh('ip', ['netns', 'del', probe]);
  if (noFirewall !== undefined) return `iptables does not work in a network namespace here: ${noFirewall}`;
  return undefined;
}

/** Namespaces a crashed run left behind (its process is gone), and any of ours from before. */
function removeLeftovers(): void {
  for (const line of sh('ip', ['netns', 'list']).split('\n')) {
    const m = new RegExp(`^(${PREFIX}\\w+-(\\d+))\\b`).exec(line);
    if (!m) continue;
    const pid = Number(m[2]);
    let alive = pid !== process.pid;
    try {
      if (alive) process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) trySh('ip', ['netns', 'del', m[1]!]);
  }
}

function buildNetwork(): void {
  for (const ns of Object.values(NS)) sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', NS.net, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', NS.net, 'link', 'set', 'br0', 'up']);
  for (const side of ['c1', 'c2'] as const) {
    const ns = NS[side];
    sh('ip', ['-n', NS.net, 'link', 'add', `to-${side}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh('ip', ['-n', NS.net, 'link', 'set', `to-${side}`, 'master', 'br0', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ADDRESS[side]}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const iptables = (...rule: string[]) => sh('ip', ['netns', 'exec', ns, 'iptables', '-w', ...rule]);
    iptables('-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT');
    iptables('-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
    iptables('-A', 'INPUT', '-p', 'tcp', '-d', ADDRESS[side], '--dport', String(GATEWAY_PORT), '-j', 'ACCEPT');
    iptables('-P', 'INPUT', 'DROP');
  }
}

/** Runs `node ARGS…` inside a namespace with the mesh's STRAIT_HOME; never throws on a non-zero exit. */
function nodeIn(ns: string, args: string[], home: string, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { env: { ...process.env, STRAIT_HOME: home, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** What a TCP connection from inside `ns` to host:port meets: `connected`, `timeout` (dropped) or an error code. */
async function connectFrom(ns: string, host: string, port: number, home: string): Promise<string> {
  const script = `const s = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${port}, timeout: 1500 });
    s.on('connect', () => { console.log('connected'); s.destroy(); });
    s.on('timeout', () => { console.log('timeout'); s.destroy(); });
    s.on('error', (e) => console.log(e.code));`;
  return (await nodeIn(ns, ['-e', script], home)).stdout.trim();
}

const skip = whyNot();
if (skip) console.log(`# netns: skipped: ${skip}`);

describe('S1 across network namespaces where only the gateway port is open', { skip }, () => {
  const mesh = new Mesh('strait-netns-');
  const c1 = ['--cluster', 'cluster1'];
  const c2 = ['--cluster', 'cluster2'];
  let listener: ChildProcess | undefined;

  const strait = async (ns: string, args: string[]) => {
    const r = await nodeIn(ns, [STRAIT_BIN, ...args], mesh.home);
    if (r.code !== 0) throw new Error(`(in ${ns}) strait ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };

  const readyPods = (cluster: string[], selector: string) =>
    waitFor(`ready ${selector} in ${cluster[1]}`, async () => {
      const { items } = await mesh.json<{ items: { status?: { phase?: string; podIP?: string; containerStatuses?: { ready?: boolean }[] } }[] }>(['get', 'pods', '-l', selector, ...cluster]);
      return items.length > 0 && items.every((p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready)) ? items : undefined;
    }, 30_000);

  before(async () => {
    removeLeftovers();
    buildNetwork();
    listener = spawn('ip', ['netns', 'exec', NS.c1, process.execPath, '-e', `require('node:net').createServer((s) => s.end('open\\n')).listen(${OTHER_PORT}, '0.0.0.0')`], { stdio: 'ignore' });
    const started = Date.now();
    await strait(NS.c1, ['up', '--clusters', 'cluster1', '--gateway-address', `${ADDRESS.c1}:${GATEWAY_PORT}`]);
    await strait(NS.c2, ['up', '--clusters', 'cluster2', '--gateway-address', `${ADDRESS.c2}:${GATEWAY_PORT}`]);
    console.log(`# both clusters up in their namespaces in ${Date.now() - started} ms`);
  });

  after(async () => {
    await mesh.destroy();
    listener?.kill('SIGKILL');
    for (const ns of Object.values(NS)) trySh('ip', ['netns', 'del', ns]);
  });

  it('lets nothing but the gateway port in from the other namespace', async () => {
    await waitFor('the listener in ns-c1', async () => (await connectFrom(NS.c1, ADDRESS.c1, OTHER_PORT, mesh.home)) === 'connected', 10_000);
    assert.equal(await connectFrom(NS.c2, ADDRESS.c1, OTHER_PORT, mesh.home), 'timeout', 'a port open on every address of ns-c1 is dropped from ns-c2');
    assert.equal(await connectFrom(NS.c2, ADDRESS.c1, CONTROL_PLANE_PORT, mesh.home), 'timeout', 'the control-plane port on the veth address is dropped from ns-c2');
    assert.equal(await connectFrom(NS.c2, ADDRESS.c1, GATEWAY_PORT, mesh.home), 'connected', "cluster1's gateway port answers from ns-c2");
    // cluster1's control plane lives on ns-c1's loopback: the same address in ns-c2 is ns-c2's own.
    const controlPlane = clusterAddresses(readMesh(mesh.home).clusters.find((c) => c.name === 'cluster1')!.index).controlPlane;
    assert.notEqual(await connectFrom(NS.c2, controlPlane, CONTROL_PLANE_PORT, mesh.home), 'connected', "cluster1's control plane is out of ns-c2's reach");
  });

  it("advertises each cluster's namespace address, and Links carry it", async () => {
    const link = parseAllDocuments(await mesh.ok(['link', '--from', 'cluster1', '--to', 'cluster2', '--print'])).map((d) => d.toJS() as { kind: string; spec?: { gatewayAddress?: string } });
    assert.equal(link.find((d) => d.kind === 'Link')!.spec!.gatewayAddress, `${ADDRESS.c1}:${GATEWAY_PORT}`);
  });

  it('S1: the mirror appears and 100 calls from sleep in cluster2 answer v1 and v2 about half each, all 200', async () => {
    const started = Date.now();
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster1.yaml', ...c1]);
    await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster2.yaml', ...c2]);
    await waitFor('helloworld-cluster1 in cluster2', async () => (await mesh.ok(['get', 'svc', ...c2])).includes('helloworld-cluster1'), 15_000, 100);
    const [v1Pod] = await readyPods(c1, 'app=helloworld');
    await readyPods(c2, 'app=helloworld');
    await readyPods(c2, 'app=sleep');
    const calls = async (n: number) => {
      const out = await strait(NS.c2, ['exec', 'deploy/sleep', ...c2, '--', 'curl', '-s', '-w', '%{http_code}\\n', `http://helloworld:5000/hello?n=[1-${n}]`]);
      const lines = out.split('\n').filter((l) => l !== '');
      return { answers: lines.filter((l) => l.startsWith('Hello')), codes: lines.filter((l) => /^\d{3}$/.test(l)) };
    };
    await waitFor('v1 answering through the gateway', async () => (await calls(10)).answers.some((a) => a.includes('v1')), 20_000, 200);
    console.log(`# cluster1 answered through its gateway ${Date.now() - started} ms after connect`);
    const { answers, codes } = await calls(100);
    assert.equal(codes.filter((c) => c === '200').length, 100, `status codes: ${codes.join(',')}`);
    const v1 = answers.filter((a) => /^Hello version: v1, instance: helloworld-v1-/.test(a)).length;
    const v2 = answers.filter((a) => /^Hello version: v2, instance: helloworld-v2-/.test(a)).length;
    console.log(`# 100 calls from ns-c2: v1 ${v1}, v2 ${v2}`);
    assert.equal(v1 + v2, 100);
    assert.ok(v1 >= 30 && v1 <= 70, `v1 answered ${v1} of 100`);
    assert.match(await mesh.ok(['remote-clusters', ...c2]), new RegExp(`cluster1\\s+${ADDRESS.c1.replaceAll('.', '\\.')}:${GATEWAY_PORT}\\s+synced`));
    assert.notEqual(await connectFrom(NS.c2, v1Pod!.status!.podIP!, PROXY_PORTS.inbound, mesh.home), 'connected', "the v1 pod's proxy is out of ns-c2's reach");
    const counters = sh('ip', ['netns', 'exec', NS.c1, 'iptables', '-w', '-L', 'INPUT', '-v', '-n', '-x']);
    const gatewayPackets = Number(/^\s*(\d+)\s+\d+\s+ACCEPT.*dpt:4143/m.exec(counters)?.[1]);
    const dropped = Number(/policy DROP (\d+) packets/.exec(counters)?.[1]);
    console.log(`# ns-c1's firewall: ${gatewayPackets} new connections accepted on the gateway port, ${dropped} packets dropped`);
    assert.ok(gatewayPackets > 0, counters);
  });
});
