// Global services at scale, one command:
//   node --import tsx bench/global-scale/run.ts [--services 1000] [--endpoints 3] [--clusters 3]
//     [--watchers 20] [--changes 100] [--gap-ms 100] [--idle-seconds 10]
//     [--profile: CPU profiles of each control plane, idle and during the changes, in profiles/]
// The real thing on this machine: `strait up` starts a control plane per cluster (store, CA,
// discovery, mesh API, link controllers, gateway) in a temporary STRAIT_HOME, and `strait connect`
// links every pair. Each cluster gets the same `--services` Services annotated
// `service.cilium.io/global: "true"`, each with `--endpoints` meshed Pods bound to another node (so
// no process runs for them: the status a kubelet would report is written through the admin API).
// Watching proxies are the proxy's own discovery client, with a workload certificate from the
// cluster's CA, connected over mTLS to the control plane of every cluster but the first; together a
// cluster's `--watchers` watch every service once.
// Measured: how long the whole set takes to reach every watcher once the clusters connect; then,
// for `--changes` readiness flips of one endpoint in the first cluster, one at a time, the time from
// the status write until every watcher of that service in the other clusters has the new endpoint
// set (p50/p99/max); and each control plane's RSS and CPU (/proc), idle after the sync and during
// the changes, and how long its event loop stalled (its admin /healthz probed every 0.5 s). Prints
// a table and one JSON line. Everything started is stopped and the state
// directory removed at the end, on failure and on Ctrl-C.
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { GLOBAL_ANNOTATIONS } from '../../src/api/global.js';
import { PROXY_CONTAINER } from '../../src/api/mesh.js';
import type { Resource } from '../../src/api/types.js';
import { AdminClient } from '../../src/control/admin-client.js';
import { PROXY_IMAGE } from '../../src/control/injector.js';
import { caTransport, connectCertifier, WorkloadIdentity } from '../../src/identity/client.js';
import { loadOrCreateTokenKey, mintBootstrapToken } from '../../src/identity/credentials.js';
import { controlPlaneSpiffeId } from '../../src/identity/spiffe.js';
import { DiscoveryClient } from '../../src/proxy/discovery-client.js';
import type { Destination, DestinationWatch } from '../../src/proxy/destinations.js';
import { clusterAddresses, CONTROL_PLANE_PORT } from '../../src/runtime/addresses.js';
import { clusterDir, paths, readMesh } from '../../src/runtime/home.js';
import { identityPaths } from '../../src/runtime/pki.js';

const { values: flags } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    endpoints: { type: 'string', default: '3' },
    clusters: { type: 'string', default: '3' },
    watchers: { type: 'string', default: '20' },
    changes: { type: 'string', default: '100' },
    'gap-ms': { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '10' },
    profile: { type: 'boolean', default: false },
  },
});

function count(name: keyof typeof flags, min: number): number {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${name} ${flags[name]}: expected a whole number of at least ${min}`);
    process.exit(2);
  }
  return value;
}

const SERVICES = count('services', 1);
const ENDPOINTS = count('endpoints', 1);
const CLUSTERS = count('clusters', 2);
const WATCHERS = Math.min(count('watchers', 1), SERVICES);
const CHANGES = count('changes', 1);
const GAP_MS = count('gap-ms', 0);
const IDLE_MS = count('idle-seconds', 1) * 1000;
// Pod addresses come from the cluster's /16 (see podIp).
if (SERVICES * ENDPOINTS > 255 * 254) {
  console.error(`--services × --endpoints is ${SERVICES * ENDPOINTS}: a cluster's address block holds at most ${255 * 254} pods`);
  process.exit(2);
}

const NAMESPACE = 'bench';
/** The node every bench pod is bound to: not any cluster's own, so no process runs for it. */
const OTHER_NODE = 'bench-worker';
/** Past this a control plane's memory is reported as a finding. */
const RSS_WARN_MB = 1024;
/** Past this the run stops, to keep the machine usable. */
const RSS_ABORT_MB = 4096;
const CHANGE_TIMEOUT_MS = 10_000;
/** A control plane answering its admin API slower than this is worth a line as it happens. */
const STALL_REPORT_MS = 1000;
const SYNC_TIMEOUT_MS = Math.max(120_000, SERVICES * 600);
const CLI = new URL('../../bin/strait.js', import.meta.url).pathname;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

const home = mkdtempSync(join(tmpdir(), 'strait-gs-'));
const names = Array.from({ length: CLUSTERS }, (_, i) => `c${i + 1}`);
const PROFILES = new URL('profiles/', import.meta.url).pathname;
const env = { ...process.env, STRAIT_HOME: home };

// ---------------------------------------------------------------------------------------------
// Cleanup: whatever happens, the clusters go down and the state directory goes.

const closers: (() => void)[] = [];
const controlPlanePids = new Map<string, number>();
let cleaning: Promise<void> | undefined;

function cleanup(failed: boolean): Promise<void> {
  cleaning ??= (async () => {
    for (const close of closers.splice(0)) close();
    if (failed) keepLogs();
    if (existsSync(join(home, 'mesh.json'))) {
      const down = await cli(['down'], 120_000).catch((err: unknown) => ({ code: 1, output: String(err) }));
      if (down.code !== 0) console.error(`strait down failed:\n${down.output}`);
    }
    // Whatever a failed `down` left of the control planes this run started.
    for (const [cluster, pid] of controlPlanePids) {
      if (processAlive(pid)) {
        console.error(`control plane of ${cluster} (pid ${pid}) still running: killing it`);
        process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(home, { recursive: true, force: true });
  })();
  return cleaning;
}

/** The control planes' logs outlive a failed run, for the post-mortem. */
function keepLogs(): void {
  const kept = mkdtempSync(join(tmpdir(), 'strait-gs-logs-'));
  for (const name of names) {
    const log = paths.log(home, name);
    if (existsSync(log)) copyFileSync(log, join(kept, `${name}.log`));
  }
  console.error(`control-plane logs kept in ${kept}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the clusters and removing ${home}`);
    void cleanup(false).finally(() => process.exit(130));
  });
}
process.on('uncaughtException', (err) => {
  console.error(err);
  void cleanup(true).finally(() => process.exit(1));
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function cli(args: string[], timeoutMs: number, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

async function strait(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  const { code, output } = await cli(args, 300_000, extraEnv);
  if (code !== 0) throw new Error(`strait ${args.join(' ')} exited with ${code}:\n${output}`);
}

// ---------------------------------------------------------------------------------------------
// Measuring processes.

interface ProcessSample {
  rssMb: number;
  hwmMb: number;
  cpuSeconds: number;
}

/** Undefined once the process is gone. */
function sampleProcess(pid: number): ProcessSample | undefined {
  let status: string;
  let statLine: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
    statLine = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const stat = statLine.split(') ')[1]!.split(' ');
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, cpuSeconds: (Number(stat[11]) + Number(stat[12])) / CLK_TCK };
}

interface PhaseFigures {
  cpuPercent: number;
  cpuSeconds: number;
  rssMb: number;
  peakRssMb: number;
  /** The slowest answer of the admin API's /healthz during the phase: how long the event loop stalled. */
  maxStallMs: number;
}

/**
 * Over one phase: RSS every second (its maximum), the CPU the phase cost, and how long each control
 * plane's event loop stalled (probed with /healthz every half second), and this process's own.
 */
class PhaseMeter {
  private readonly start = new Map<string, ProcessSample>();
  private readonly peakRss = new Map<string, number>();
  private readonly stall = new Map<string, { maxMs: number; since?: number }>();
  private readonly began = performance.now();
  private readonly timer: NodeJS.Timeout;
  private readonly ownLoop = monitorEventLoopDelay({ resolution: 20 });
  private running = true;

  constructor(readonly phase: string) {
    for (const [cluster, pid] of controlPlanePids) {
      this.start.set(cluster, alive(cluster, pid, phase));
      void this.probe(cluster);
    }
    this.timer = setInterval(() => this.sample(), 1000);
    closers.push(() => this.stop());
    this.ownLoop.enable();
    this.sample();
  }

  private async probe(cluster: string): Promise<void> {
    const admin = admins.get(cluster)!;
    const stall = { maxMs: 0 } as { maxMs: number; since?: number };
    this.stall.set(cluster, stall);
    while (this.running) {
      stall.since = performance.now();
      const answered = await admin.health(120_000).then(
        () => true,
        () => false,
      );
      const tookMs = performance.now() - stall.since;
      if (answered) stall.maxMs = Math.max(stall.maxMs, tookMs);
      if (tookMs > STALL_REPORT_MS) console.error(`# ${cluster}'s control plane took ${(tookMs / 1000).toFixed(1)} s to answer /healthz during ${this.phase}`);
      stall.since = undefined;
      await sleep(500);
    }
  }

  private stop(): void {
    this.running = false;
    clearInterval(this.timer);
    this.ownLoop.disable();
  }

  private sample(): void {
    for (const [cluster, pid] of controlPlanePids) {
      const rssMb = sampleProcess(pid)?.rssMb;
      if (rssMb === undefined) {
        aborted ??= `${cluster}'s control plane (pid ${pid}) exited during ${this.phase}`;
        continue;
      }
      this.peakRss.set(cluster, Math.max(this.peakRss.get(cluster) ?? 0, rssMb));
      if (rssMb > RSS_WARN_MB && !memoryFindings.some((f) => f.cluster === cluster && f.phase === this.phase)) {
        memoryFindings.push({ cluster, phase: this.phase, rssMb: Math.round(rssMb) });
        console.error(`# ${cluster}'s control plane passed ${RSS_WARN_MB} MB RSS (${rssMb.toFixed(0)} MB) during ${this.phase}`);
      }
      if (rssMb > RSS_ABORT_MB) aborted = `${cluster}'s control plane reached ${rssMb.toFixed(0)} MB RSS during ${this.phase}`;
    }
  }

  end(): { controlPlanes: Record<string, PhaseFigures>; benchMaxStallMs: number } {
    this.sample();
    this.stop();
    const now = performance.now();
    const seconds = (now - this.began) / 1000;
    const controlPlanes: Record<string, PhaseFigures> = {};
    for (const [cluster, pid] of controlPlanePids) {
      const sample = alive(cluster, pid, this.phase);
      const cpuSeconds = sample.cpuSeconds - this.start.get(cluster)!.cpuSeconds;
      const stall = this.stall.get(cluster)!;
      controlPlanes[cluster] = {
        cpuPercent: round((100 * cpuSeconds) / seconds, 1),
        cpuSeconds: round(cpuSeconds, 2),
        rssMb: Math.round(sample.rssMb),
        peakRssMb: Math.round(this.peakRss.get(cluster)!),
        maxStallMs: Math.round(Math.max(stall.maxMs, stall.since === undefined ? 0 : now - stall.since)),
      };
    }
    return { controlPlanes, benchMaxStallMs: Math.round(this.ownLoop.max / 1e6) };
  }
}

function alive(cluster: string, pid: number, phase: string): ProcessSample {
  const sample = sampleProcess(pid);
  if (!sample) throw new Error(`${cluster}'s control plane (pid ${pid}) exited during ${phase}`);
  return sample;
}

const admins = new Map<string, AdminClient>();
const memoryFindings: { cluster: string; phase: string; rssMb: number }[] = [];
let aborted: string | undefined;

function checkAbort(): void {
  if (aborted) throw new Error(`stopped: ${aborted}`);
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function until(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    checkAbort();
    if (Date.now() > deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The workload: global services whose endpoints are pods bound to another node.

const serviceName = (i: number) => `svc-${i}`;
const podName = (i: number, p: number) => `svc-${i}-${p}`;

/** Pod addresses in the cluster's own block, laid out as the pod address allocator lays them out. */
function podIp(clusterIndex: number, i: number, p: number): string {
  const [a, b] = clusterAddresses(clusterIndex).cidr.split('.');
  const n = i * ENDPOINTS + p;
  return `${a}.${b}.${1 + Math.floor(n / 254)}.${1 + (n % 254)}`;
}

function podStatus(ip: string, ready: boolean) {
  const condition = (type: string) => ({ type, status: ready ? 'True' : 'False', lastTransitionTime: new Date().toISOString() });
  return { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [condition('Ready'), condition('ContainersReady')] };
}

function workload(): Resource[] {
  const objects: Resource[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }];
  for (let i = 0; i < SERVICES; i++) {
    const app = serviceName(i);
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, namespace: NAMESPACE, annotations: { [GLOBAL_ANNOTATIONS[0]]: 'true' } },
      spec: { selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 5000, protocol: 'TCP' }] },
    });
    for (let p = 0; p < ENDPOINTS; p++) {
      objects.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: podName(i, p), namespace: NAMESPACE, labels: { app } },
        spec: {
          nodeName: OTHER_NODE,
          containers: [
            { name: 'app', image: 'docker.io/istio/examples-helloworld-v1', ports: [{ name: 'http', containerPort: 5000 }] },
            { name: PROXY_CONTAINER, image: PROXY_IMAGE },
          ],
        },
      });
    }
  }
  return objects;
}

async function populate(admin: AdminClient, clusterIndex: number): Promise<void> {
  const objects = workload();
  for (let start = 0; start < objects.length; start += 500) await admin.apply(objects.slice(start, start + 500));
  const pods = Array.from({ length: SERVICES * ENDPOINTS }, (_, n) => ({ i: Math.floor(n / ENDPOINTS), p: n % ENDPOINTS }));
  await inParallel(pods, 16, ({ i, p }) => admin.updateStatus({ kind: 'Pod', namespace: NAMESPACE, name: podName(i, p) }, podStatus(podIp(clusterIndex, i, p), true)));
}

// ---------------------------------------------------------------------------------------------
// Watching proxies.

interface Watcher {
  cluster: string;
  id: number;
  client: DiscoveryClient;
  identity: WorkloadIdentity;
  watches: Map<number, DestinationWatch>;
}

/** Every endpoint of a destination, as `cluster/address`. */
function endpointKeys(destination: Destination | undefined): Set<string> {
  const keys = new Set<string>();
  for (const backend of destination?.backends ?? []) for (const e of backend.endpoints) keys.add(`${e.cluster}/${e.address}`);
  return keys;
}

async function startWatcher(cluster: string, clusterIndex: number, id: number, services: number[]): Promise<Watcher> {
  const { trustDomain } = readMesh(home);
  const host = clusterAddresses(clusterIndex).controlPlane;
  const controlPlaneIdentity = controlPlaneSpiffeId(trustDomain);
  const tokenKeyFile = identityPaths.tokenKey(home, cluster);
  if (!existsSync(tokenKeyFile)) throw new Error(`${tokenKeyFile} is missing: the control plane of ${cluster} did not make its token key`);
  const token = mintBootstrapToken(loadOrCreateTokenKey(tokenKeyFile), { cluster, namespace: NAMESPACE, serviceAccount: 'default', pod: `watcher-${id}` });
  const transport = caTransport({
    baseUrl: `https://${host}:${CONTROL_PLANE_PORT}`,
    trustBundlePem: readFileSync(identityPaths.trustAnchors(home, cluster), 'utf8'),
    serverIdentity: controlPlaneIdentity,
  });
  const identity = new WorkloadIdentity({ certifier: connectCertifier(transport, () => token) });
  await identity.start();
  const client = new DiscoveryClient({ controlPlane: { host, port: CONTROL_PLANE_PORT }, controlPlaneIdentity, identity });
  const watches = new Map(services.map((i) => [i, client.watch(`${serviceName(i)}.${NAMESPACE}.svc.cluster.local:80`)]));
  const watcher = { cluster, id, client, identity, watches };
  closers.push(() => {
    for (const w of watches.values()) w.close();
    client.close();
    identity.stop();
  });
  return watcher;
}

/** True once every watch of every watcher shows `expected` endpoints. */
function allShow(watchers: Watcher[], expected: number): boolean {
  return watchers.every((w) => [...w.watches.values()].every((watch) => endpointKeys(watch.current()).size === expected));
}

// ---------------------------------------------------------------------------------------------

/** Every EndpointSlice of the bench namespace in each cluster: `name` → resourceVersion and the cluster its endpoints are in. */
async function sliceVersions(): Promise<Map<string, Map<string, { version: string; from: string }>>> {
  const out = new Map<string, Map<string, { version: string; from: string }>>();
  for (const name of names) {
    const { items } = await admins.get(name)!.list('EndpointSlice', { namespace: NAMESPACE });
    out.set(name, new Map(items.map((s) => [s.metadata.name, { version: s.metadata.resourceVersion ?? '', from: s.metadata.labels?.['strait.dev/remote-cluster'] ?? name }])));
  }
  return out;
}

/** Per cluster, how many slices were rewritten between two listings, by the cluster their endpoints are in. */
function rewrites(before: Awaited<ReturnType<typeof sliceVersions>>, after: Awaited<ReturnType<typeof sliceVersions>>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const name of names) {
    const counts: Record<string, number> = {};
    for (const [key, slice] of after.get(name)!) if (before.get(name)!.get(key)?.version !== slice.version) counts[slice.from] = (counts[slice.from] ?? 0) + 1;
    out[name] = counts;
  }
  return out;
}

/** How often each control plane has logged a linked cluster's gateway going down or coming back. */
function gatewayFlaps(): Record<string, number> {
  return Object.fromEntries(names.map((name) => [name, readFileSync(paths.log(home, name), 'utf8').split('\n').filter((l) => l.includes('"msg":"link: the gateway of')).length]));
}

function since(before: Record<string, number>): Record<string, number> {
  const now = gatewayFlaps();
  return Object.fromEntries(names.map((name) => [name, now[name]! - before[name]!]));
}

/** With --profile: starts, or ends and writes, each control plane's CPU profile (see profile-preload.mjs). */
function toggleProfiles(): void {
  if (!flags.profile) return;
  for (const pid of controlPlanePids.values()) process.kill(pid, 'SIGUSR2');
}

function machine() {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return {
    cpu: model,
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    loadavg: loadavg().map((l) => round(l, 2)),
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const machineBefore = machine();
  console.log(`# ${CLUSTERS} clusters × ${SERVICES} global services × ${ENDPOINTS} endpoints; ${WATCHERS} watchers per watching cluster; STRAIT_HOME=${home}`);

  if (flags.profile) mkdirSync(PROFILES, { recursive: true });
  const preload = new URL('profile-preload.mjs', import.meta.url).pathname;
  await strait(['up', '--clusters', names.join(',')], flags.profile ? { NODE_OPTIONS: `--import=${preload}`, STRAIT_PROFILE_DIR: PROFILES } : {});
  const entries = new Map(readMesh(home).clusters.map((c) => [c.name, c.index]));
  for (const name of names) controlPlanePids.set(name, Number(readFileSync(paths.pid(home, name), 'utf8').trim()));
  for (const name of names) admins.set(name, new AdminClient(paths.socket(home, name), name));
  console.log(`# up: ${((performance.now() - started) / 1000).toFixed(1)} s; control planes ${[...controlPlanePids].map(([c, pid]) => `${c}=${pid}`).join(' ')}`);

  // Each cluster's own services first, unlinked.
  const writeMeter = new PhaseMeter('writes');
  const writing = performance.now();
  await Promise.all(names.map((name) => populate(admins.get(name)!, entries.get(name)!)));
  const writeMs = performance.now() - writing;
  const writes = writeMeter.end();
  console.log(`# wrote ${SERVICES} services and ${SERVICES * ENDPOINTS} pod statuses per cluster in ${(writeMs / 1000).toFixed(1)} s`);
  checkAbort();
  // The pods are bound to another node: no supervisor may have started (or be starting) them.
  for (const name of names) {
    const pods = join(clusterDir(home, name), 'pods');
    if (existsSync(pods) && readdirSync(pods).length > 0) throw new Error(`${name} runs processes for pods bound to ${OTHER_NODE} (see ${pods})`);
  }

  // Watchers in every cluster but the first (where the changes are made); together a cluster's
  // watchers watch every service once.
  const watching = names.slice(1);
  const watchers: Watcher[] = [];
  const subscribeMeter = new PhaseMeter('subscribe');
  const subscribing = performance.now();
  for (const name of watching) {
    const started = await Promise.all(
      Array.from({ length: WATCHERS }, (_, id) => {
        const services = Array.from({ length: SERVICES }, (_, i) => i).filter((i) => i % WATCHERS === id);
        return startWatcher(name, entries.get(name)!, id, services);
      }),
    );
    watchers.push(...started);
  }
  await until('every watcher to see its services’ local endpoints', 120_000, () => allShow(watchers, ENDPOINTS));
  const subscribeMs = performance.now() - subscribing;
  const subscribe = subscribeMeter.end();
  console.log(`# ${watchers.length} watchers hold ${SERVICES} services in each cluster (${ENDPOINTS} local endpoints each) after ${(subscribeMs / 1000).toFixed(1)} s`);

  // Connect every pair; the sync ends when every watcher has every cluster's endpoints, and the
  // first cluster's store (no watchers there) has every other cluster's members.
  const syncMeter = new PhaseMeter('initial sync');
  const syncStart = performance.now();
  for (let a = 0; a < names.length; a++) for (let b = a + 1; b < names.length; b++) await strait(['connect', names[a]!, names[b]!]);
  const connectMs = performance.now() - syncStart;
  let watchersSyncedMs = 0;
  let firstStoreSyncedMs = 0;
  const full = CLUSTERS * ENDPOINTS;
  await Promise.all([
    until('every watcher to see every cluster’s endpoints', SYNC_TIMEOUT_MS, () => allShow(watchers, full)).then(() => (watchersSyncedMs = performance.now() - syncStart)),
    until(
      `${names[0]} to hold every other cluster’s ready endpoints`,
      SYNC_TIMEOUT_MS,
      async () => {
        const slices = await admins.get(names[0]!)!.list('EndpointSlice', { namespace: NAMESPACE, selector: 'strait.dev/remote-cluster' });
        let ready = 0;
        for (const slice of slices.items as { endpoints?: { conditions?: { ready?: boolean } }[] }[]) {
          for (const e of slice.endpoints ?? []) if (e.conditions?.ready !== false) ready++;
        }
        return ready >= (CLUSTERS - 1) * SERVICES * ENDPOINTS;
      },
      2000,
    ).then(() => (firstStoreSyncedMs = performance.now() - syncStart)),
  ]);
  const sync = syncMeter.end();
  console.log(`# synced: every watcher after ${(watchersSyncedMs / 1000).toFixed(1)} s, ${names[0]}'s store after ≤ ${(firstStoreSyncedMs / 1000).toFixed(1)} s (connect commands: ${(connectMs / 1000).toFixed(1)} s)`);

  // Idle: nothing changes; nor should anything be written.
  const slicesBefore = await sliceVersions();
  const flapsBeforeIdle = gatewayFlaps();
  await sleep(3000);
  const idleStarted = performance.now();
  const idleMeter = new PhaseMeter('idle');
  toggleProfiles();
  await sleep(IDLE_MS);
  toggleProfiles();
  const idle = idleMeter.end();
  const idleSeconds = round((performance.now() - idleStarted) / 1000, 1);
  const slicesAfter = await sliceVersions();
  const idleSliceWrites = rewrites(slicesBefore, slicesAfter);
  const idleFlaps = since(flapsBeforeIdle);
  console.log(`# idle ${idleSeconds} s (from 3 s after the sync): EndpointSlices rewritten, by the cluster of their endpoints ${JSON.stringify(idleSliceWrites)}, gateway state changes seen ${JSON.stringify(idleFlaps)}`);
  checkAbort();

  // Changes: one endpoint of a random service in the first cluster goes unready, then ready again.
  const source = names[0]!;
  const sourceIndex = entries.get(source)!;
  const watchersOf = (i: number) => watchers.filter((w) => w.watches.has(i));
  const perChange: number[] = [];
  const perWatcher: number[] = [];
  let missed = 0;
  const flapsBeforeChanges = gatewayFlaps();
  const changeMeter = new PhaseMeter('changes');
  toggleProfiles();
  const changeStart = performance.now();
  let target = { i: 0, p: 0 };
  for (let k = 0; k < CHANGES; k++) {
    checkAbort();
    const ready = k % 2 === 1;
    if (!ready) target = { i: Math.floor(Math.random() * SERVICES), p: Math.floor(Math.random() * ENDPOINTS) };
    const key = `${source}/${podIp(sourceIndex, target.i, target.p)}`;
    const seen = watchersOf(target.i).map((w) => {
      const watch = w.watches.get(target.i)!;
      return new Promise<number | undefined>((resolve) => {
        const done = (at: number | undefined) => {
          stop();
          clearTimeout(timer);
          resolve(at);
        };
        const stop = watch.onUpdate((d) => {
          if (endpointKeys(d).has(key) === ready) done(performance.now());
        });
        const timer = setTimeout(() => done(undefined), CHANGE_TIMEOUT_MS);
      });
    });
    const sent = performance.now();
    await admins.get(source)!.updateStatus({ kind: 'Pod', namespace: NAMESPACE, name: podName(target.i, target.p) }, podStatus(podIp(sourceIndex, target.i, target.p), ready));
    const times = await Promise.all(seen);
    if (times.some((t) => t === undefined)) missed++;
    else {
      perChange.push(Math.max(...times.map((t) => t! - sent)));
      perWatcher.push(...times.map((t) => t! - sent));
    }
    await sleep(GAP_MS);
  }
  const changeSeconds = (performance.now() - changeStart) / 1000;
  toggleProfiles();
  const changes = changeMeter.end();
  const changeFlaps = since(flapsBeforeChanges);
  const changeSliceWrites = rewrites(slicesAfter, await sliceVersions());

  perChange.sort((a, b) => a - b);
  perWatcher.sort((a, b) => a - b);
  const ms = (values: number[], q: number) => (values.length ? round(percentile(values, q), 1) : null);
  const hwm = Object.fromEntries([...controlPlanePids].map(([c, pid]) => [c, Math.round(alive(c, pid, 'the end').hwmMb)]));
  const result = {
    bench: 'global-scale',
    clusters: CLUSTERS,
    services: SERVICES,
    endpointsPerService: ENDPOINTS,
    watchersPerCluster: WATCHERS,
    watchingClusters: watching,
    writesSeconds: round(writeMs / 1000, 1),
    subscribeSeconds: round(subscribeMs / 1000, 1),
    sync: { connectSeconds: round(connectMs / 1000, 1), watchersSeconds: round(watchersSyncedMs / 1000, 1), firstStoreSeconds: round(firstStoreSyncedMs / 1000, 1) },
    changes: {
      count: CHANGES,
      missed,
      seconds: round(changeSeconds, 1),
      allWatchersMs: { p50: ms(perChange, 0.5), p99: ms(perChange, 0.99), max: ms(perChange, 1) },
      eachWatcherMs: { p50: ms(perWatcher, 0.5), p99: ms(perWatcher, 0.99), max: ms(perWatcher, 1) },
    },
    controlPlanes: Object.fromEntries(
      names.map((c) => [
        c,
        {
          writes: writes.controlPlanes[c],
          subscribe: subscribe.controlPlanes[c],
          sync: sync.controlPlanes[c],
          idle: idle.controlPlanes[c],
          changes: changes.controlPlanes[c],
          rssPeakMb: hwm[c],
        },
      ]),
    ),
    benchProcessMaxStallMs: { writes: writes.benchMaxStallMs, subscribe: subscribe.benchMaxStallMs, sync: sync.benchMaxStallMs, idle: idle.benchMaxStallMs, changes: changes.benchMaxStallMs },
    idle: { seconds: idleSeconds, sliceWrites: idleSliceWrites, gatewayStateChanges: idleFlaps },
    gatewayStateChanges: { changes: changeFlaps, wholeRun: gatewayFlaps() },
    changesSliceWrites: changeSliceWrites,
    memoryFindings,
    machine: { ...machineBefore, loadavgAfter: loadavg().map((l) => round(l, 2)) },
    totalSeconds: round((performance.now() - started) / 1000, 1),
  };

  const row = (cells: (string | number | null)[]) => cells.map((c, n) => String(c ?? '—').padStart(n === 0 ? 0 : 12)).join('');
  console.log('');
  console.log(`endpoint change in ${source} → every watcher in ${watching.join(', ')} (${perChange.length} changes, ${missed} missed)`);
  console.log(row(['                 ', 'p50 ms', 'p99 ms', 'max ms']));
  console.log(row(['all watchers     ', result.changes.allWatchersMs.p50, result.changes.allWatchersMs.p99, result.changes.allWatchersMs.max]));
  console.log(row(['each watcher     ', result.changes.eachWatcherMs.p50, result.changes.eachWatcherMs.p99, result.changes.eachWatcherMs.max]));
  console.log('');
  console.log(`initial sync after connect: every watcher ${result.sync.watchersSeconds} s, ${names[0]}'s store ≤ ${result.sync.firstStoreSeconds} s (connect commands ${result.sync.connectSeconds} s)`);
  console.log('');
  console.log(row(['control plane', 'idle RSS MB', 'idle CPU %', 'chg RSS MB', 'chg CPU %', 'sync CPU s', 'peak RSS MB', 'stall ms*']));
  for (const c of names) {
    const [i, ch, sy] = [idle.controlPlanes[c]!, changes.controlPlanes[c]!, sync.controlPlanes[c]!];
    const stall = Math.max(...[writes, subscribe, sync, idle, changes].map((phase) => phase.controlPlanes[c]!.maxStallMs));
    console.log(row([c.padEnd(13), i.rssMb, i.cpuPercent, ch.peakRssMb, ch.cpuPercent, sy.cpuSeconds, hwm[c]!, stall]));
  }
  console.log('* the slowest /healthz answer of the admin API over the whole run (event-loop stall)');
  if (memoryFindings.length) console.log(`\nmemory: ${memoryFindings.map((f) => `${f.cluster} ${f.rssMb} MB during ${f.phase}`).join('; ')}`);
  console.log('');
  console.log(JSON.stringify(result));
}

try {
  await main();
  await cleanup(false);
} catch (err) {
  process.exitCode = 1;
  console.error(err instanceof Error ? err.message : err);
  await cleanup(true);
}
