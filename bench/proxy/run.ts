// The proxy benchmark, one command:
//   node --import tsx bench/proxy/run.ts [--quick] [--profile] [--proxy-node-options="<node flags>"]
// Side by side in one run, against the same app: a direct call; Strait (client proxy → server
// proxy over mTLS HTTP/2, HTTP/1.1 from the app); and nginx as a plain reverse proxy with
// keep-alive upstreams. Two measurements: a fixed 1,000 req/s (latency from the intended send
// time, p50/p90/p99/p99.9, and what each proxy adds over direct), and the maximum rate with `wrk`
// while the proxies are pinned to one core (req/s, and req/s per CPU-second each proxy used).
// Each proxy's RSS is read from /proc. `--quick` runs shorter; `--profile` writes CPU profiles of
// the proxies (node --cpu-prof). It ends with a Markdown table for docs/benchmarks.md.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/ca.js';
import type { ProxyConfig } from '../../src/proxy/config.js';
import type { StaticDestination } from '../../src/proxy/static-resolver.js';
import { issueMaterial, meshPki } from '../../test/unit/identity/fixtures.js';
import { constantRate, percentile, type LoadTarget } from './load.js';
import type { BenchProxySpec } from './proxy-process.js';

const argv = process.argv.slice(2);
const args = new Set(argv);
/** `--proxy-node-options="--max-semi-space-size=2 …"`: V8/Node flags for the proxy processes. */
const PROXY_NODE_OPTIONS = (argv.find((a) => a.startsWith('--proxy-node-options='))?.slice('--proxy-node-options='.length) ?? '').split(' ').filter(Boolean);
const QUICK = args.has('--quick');
/** Where CPU profiles of the proxies go, when asked for. */
const PROFILE_DIR = args.has('--profile') ? mkdtempSync(join(tmpdir(), 'strait-bench-profiles-')) : undefined;
const FIXED_RATE = 1000;
const FIXED_SECONDS = QUICK ? 6 : 30;
const FIXED_ROUNDS = QUICK ? 2 : 6;
const WARMUP_SECONDS = QUICK ? 1 : 3;
const MAX_SECONDS = QUICK ? 5 : 8;
/** wrk runs per target; the best is kept, since noise from elsewhere only ever lowers a rate. */
const MAX_RUNS = QUICK ? 1 : 2;
const WRK_CONNECTIONS = 64;
/** At the fixed rate every process may use every core. At the maximum rate the proxies under test
 * (both Strait proxies together, or nginx) get core 1 to themselves; wrk and the app share core 0. */
const ALL_CORES = `0-${cpus().length - 1}`;
const LOAD_CORE = '0';
const PROXY_CORE = '1';

const APP_IP = '127.94.0.2';
const CLIENT_IP = '127.94.0.1';
const NGINX_IP = '127.94.0.3';
const APP_PORT = 5000;
const NGINX_PORT = 8080;
const AUTHORITY = `helloworld:${APP_PORT}`;
const ROOT = new URL('../..', import.meta.url).pathname;

const children: ChildProcess[] = [];
const work = mkdtempSync(join(tmpdir(), 'strait-bench-'));

function ensureTools(): void {
  const missing = ['wrk', 'nginx', 'taskset'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length === 0) return;
  const packages = missing.map((t) => (t === 'nginx' ? 'nginx-light' : t === 'taskset' ? 'util-linux' : t));
  console.log(`installing ${packages.join(', ')} (apt-get)…`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (cmd: string[]) => execFileSync(sudo[0] ?? cmd[0]!, sudo.length ? cmd : cmd.slice(1), { stdio: 'inherit' });
  run(['apt-get', 'update']);
  run(['apt-get', 'install', '-y', ...packages]);
}

function pinned(core: string, command: string, argv: string[]): ChildProcess {
  const child = spawn('taskset', ['-c', core, command, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

/** Moves every thread of a running process to `cores` (e.g. "0,1", or one core). */
function pin(pid: number, cores: string): void {
  execFileSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
}

function waitForLine(child: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      const line = text.split('\n').find((l) => l.startsWith(prefix));
      if (line) resolve(line.slice(prefix.length).trim());
    });
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before printing "${prefix}"`)));
  });
}

async function waitForPort(host: string, port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => resolve(true));
      s.once('error', () => resolve(false));
      s.once('connect', () => s.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${host}:${port} did not open`);
}

function startApp(): ChildProcess {
  // Like the helloworld sample's answer, without its access log: the app should not be the bottleneck.
  const script = `require('http').createServer((q, s) => { s.setHeader('content-type', 'text/plain'); s.end('Hello version: v1, instance: helloworld-v1-bench\\n'); }).listen(${APP_PORT}, '${APP_IP}')`;
  return pinned(ALL_CORES, process.execPath, ['-e', script]);
}

/**
 * Bundles the proxy process with esbuild (packages stay external), so the proxy runs as compiled
 * JavaScript the way `strait proxy` does, without a TypeScript loader in the measured process.
 */
async function bundleProxy(): Promise<string> {
  const { build } = await import('esbuild');
  // Under node_modules so the bundle resolves the packages it leaves external.
  const outfile = join(ROOT, 'node_modules/.cache/strait-bench/proxy-process.mjs');
  await build({ entryPoints: [join(ROOT, 'bench/proxy/proxy-process.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile, logLevel: 'warning' });
  return outfile;
}

async function startProxyProcess(bundle: string, name: string, spec: BenchProxySpec, core: string): Promise<{ child: ChildProcess; ports: { outbound: number; inbound: number; admin: number } }> {
  const file = join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', join(PROFILE_DIR, name)] : [];
  const child = pinned(core, process.execPath, [...PROXY_NODE_OPTIONS, ...profile, bundle, file]);
  const ports = JSON.parse(await waitForLine(child, 'ready ')) as { outbound: number; inbound: number; admin: number };
  return { child, ports };
}

function startNginx(): ChildProcess {
  const conf = join(work, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
master_process off;
pid ${work}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${work}/body;
  proxy_temp_path ${work}/proxy;
  fastcgi_temp_path ${work}/fastcgi;
  uwsgi_temp_path ${work}/uwsgi;
  scgi_temp_path ${work}/scgi;
  keepalive_requests 1000000;
  upstream app { server ${APP_IP}:${APP_PORT}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen ${NGINX_IP}:${NGINX_PORT} reuseport;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`,
  );
  return pinned(ALL_CORES, 'nginx', ['-c', conf, '-e', 'stderr']);
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

interface Target {
  name: string;
  load: LoadTarget;
  /** The proxy processes this path goes through (for CPU and memory). */
  pids: number[];
}

interface FixedResult {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  rate: number;
  errors: number;
}

/**
 * The fixed-rate measurement: every target warmed up, then measured in short rounds taken in turn
 * (direct, Strait, nginx, direct, …), so that noise from the rest of the machine falls on all of
 * them alike; each target's percentiles are over all its rounds together.
 */
async function fixedRate(targets: Target[]): Promise<Record<string, FixedResult>> {
  for (const t of targets) await constantRate(t.load, { rate: FIXED_RATE, durationMs: WARMUP_SECONDS * 1000, connections: 16 });
  const samples = new Map<string, Float64Array[]>(targets.map((t) => [t.name, []]));
  const totals = new Map<string, { errors: number; rate: number }>(targets.map((t) => [t.name, { errors: 0, rate: 0 }]));
  for (let round = 0; round < FIXED_ROUNDS; round++) {
    for (const t of targets) {
      const result = await constantRate(t.load, { rate: FIXED_RATE, durationMs: (FIXED_SECONDS * 1000) / FIXED_ROUNDS, connections: 16 });
      samples.get(t.name)!.push(result.latenciesMs);
      const total = totals.get(t.name)!;
      total.errors += result.errors + result.non2xx;
      total.rate += result.achievedRate / FIXED_ROUNDS;
    }
  }
  const results: Record<string, FixedResult> = {};
  for (const t of targets) {
    const parts = samples.get(t.name)!;
    const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) {
      all.set(p, offset);
      offset += p.length;
    }
    all.sort();
    const { errors, rate } = totals.get(t.name)!;
    results[t.name] = { p50: percentile(all, 50), p90: percentile(all, 90), p99: percentile(all, 99), p999: percentile(all, 99.9), rate, errors };
  }
  return results;
}

interface MaxResult {
  rps: number;
  /** CPU seconds the proxies used per wall second (1.0 = one core busy). */
  proxyCores: number;
  p99: string;
}

function wrk(target: Target): MaxResult {
  const before = target.pids.map(cpuSeconds);
  const started = performance.now();
  const url = `http://${target.load.host}:${target.load.port}${target.load.path}`;
  const out = execFileSync('taskset', ['-c', LOAD_CORE, 'wrk', '-t1', `-c${WRK_CONNECTIONS}`, `-d${MAX_SECONDS}s`, '--latency', '-H', `Host: ${target.load.authority}`, url], { encoding: 'utf8' });
  const seconds = (performance.now() - started) / 1000;
  const used = target.pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - before[i]!, 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors:.*/.exec(out)?.[0];
  if (non2xx > 0 || socketErrors) console.log(`  ${target.name}: ${non2xx} non-2xx responses; ${socketErrors ?? 'no socket errors'}`);
  return { rps, proxyCores: used / seconds, p99: /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?' };
}

function machine(): Record<string, string> {
  const version = (cmd: string, argv: string[]) => {
    const r = spawnSync(cmd, argv, { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n')[0]!.trim();
  };
  return {
    cpu: `${cpus()[0]?.model ?? '?'} × ${cpus().length}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    kernel: release(),
    node: process.version,
    nginx: version('nginx', ['-v']).replace('nginx version: ', ''),
    wrk: version('wrk', ['-v']).split(' [')[0]!,
  };
}

const ms = (v: number) => v.toFixed(3);

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  if (cpus().length < 2) throw new Error('the benchmark needs at least two cores: one for the proxies under test, one for the load');
  ensureTools();
  const host = machine();
  const loadBefore = load();
  console.log(`machine: ${JSON.stringify(host)}; load average ${loadBefore}`);
  if (PROXY_NODE_OPTIONS.length > 0) console.log(`proxy processes run with: node ${PROXY_NODE_OPTIONS.join(' ')}`);

  const { issuers } = await meshPki(['cluster1']);
  const ca = new CertificateAuthority({ issuer: issuers.cluster1!, trustDomain: 'cluster.local' });
  const helloworldId = 'spiffe://cluster.local/ns/sample/sa/helloworld';
  const baseConfig = (pod: string, podIp: string): ProxyConfig => ({
    pod,
    namespace: 'sample',
    podIp,
    cluster: 'cluster1',
    controlPlane: { host: '127.0.0.1', port: 1 },
    controlPlaneIdentity: 'spiffe://cluster.local/ns/strait-system/sa/control-plane',
    identityTokenFile: '/unused',
    trustAnchorsFile: '/unused',
    trustDomain: 'cluster.local',
    ports: { outbound: 4140, inbound: 4143, admin: 4191 },
    outboundListeners: [],
  });

  const bundle = await bundleProxy();
  const app = startApp();
  await waitForPort(APP_IP, APP_PORT);
  const server = await startProxyProcess(bundle, 'server', { config: baseConfig('helloworld-v1-bench', APP_IP), material: await issueMaterial(ca, { namespace: 'sample', serviceAccount: 'helloworld' }), destinations: {} }, ALL_CORES);
  const helloworld: StaticDestination = {
    service: 'helloworld.sample.svc.cluster.local',
    namespace: 'sample',
    exists: true,
    ports: [{ port: APP_PORT, protocol: 'http' }],
    loadBalancer: 'ewma',
    version: '1',
    backends: [
      {
        service: 'helloworld.sample.svc.cluster.local',
        namespace: 'sample',
        weight: 1,
        exists: true,
        endpoints: [{ address: APP_IP, port: APP_PORT, identity: helloworldId, proxy: { host: APP_IP, port: server.ports.inbound }, cluster: 'cluster1', pod: 'helloworld-v1-bench', ready: true }],
      },
    ],
  };
  const client = await startProxyProcess(bundle, 'client', { config: baseConfig('sleep-bench', CLIENT_IP), material: await issueMaterial(ca, { namespace: 'sample', serviceAccount: 'sleep' }), destinations: { helloworld } }, ALL_CORES);
  const nginx = startNginx();
  await waitForPort(NGINX_IP, NGINX_PORT);

  const targets: Target[] = [
    { name: 'direct', load: { host: APP_IP, port: APP_PORT, path: '/hello', authority: AUTHORITY }, pids: [] },
    { name: 'strait', load: { host: CLIENT_IP, port: client.ports.outbound, path: '/hello', authority: AUTHORITY }, pids: [client.child.pid!, server.child.pid!] },
    { name: 'nginx', load: { host: NGINX_IP, port: NGINX_PORT, path: '/hello', authority: AUTHORITY }, pids: [nginx.pid!] },
  ];

  console.log(`\nfixed rate: ${FIXED_RATE} req/s for ${FIXED_SECONDS} s each, in ${FIXED_ROUNDS} interleaved rounds (latency from the intended send time, ms)`);
  const fixedResults = await fixedRate(targets);
  for (const t of targets) {
    const r = fixedResults[t.name]!;
    console.log(`  ${t.name.padEnd(7)} p50 ${ms(r.p50)}  p90 ${ms(r.p90)}  p99 ${ms(r.p99)}  p99.9 ${ms(r.p999)}  (${r.rate.toFixed(0)} req/s, ${r.errors} errors)`);
  }
  const rss = { client: memory(client.child.pid!), server: memory(server.child.pid!), nginx: memory(nginx.pid!) };
  console.log(`  RSS after the fixed-rate runs: client proxy ${rss.client.rssMb.toFixed(1)} MB, server proxy ${rss.server.rssMb.toFixed(1)} MB, nginx ${rss.nginx.rssMb.toFixed(1)} MB`);

  pin(app.pid!, LOAD_CORE);
  for (const pid of [client.child.pid!, server.child.pid!, nginx.pid!]) pin(pid, PROXY_CORE);
  console.log(`\nmaximum rate: wrk -t1 -c${WRK_CONNECTIONS} for ${MAX_SECONDS} s, best of ${MAX_RUNS}; proxies pinned to core ${PROXY_CORE}, wrk and the app on core ${LOAD_CORE}`);
  const maxResults: Record<string, MaxResult> = {};
  for (let run = 0; run < MAX_RUNS; run++) {
    for (const t of targets) {
      const result = wrk(t);
      if (!maxResults[t.name] || result.rps > maxResults[t.name]!.rps) maxResults[t.name] = result;
    }
  }
  for (const t of targets) {
    const r = maxResults[t.name]!;
    console.log(`  ${t.name.padEnd(7)} ${r.rps.toFixed(0)} req/s  (wrk p99 ${r.p99}${t.pids.length ? `, proxy CPU ${r.proxyCores.toFixed(2)} cores` : ''})`);
  }
  const peak = { client: memory(client.child.pid!).peakMb, server: memory(server.child.pid!).peakMb, nginx: memory(nginx.pid!).peakMb };

  const added = (name: string, key: keyof FixedResult) => fixedResults[name]![key] - fixedResults.direct![key];
  const strait = maxResults.strait!;
  const ngx = maxResults.nginx!;
  // Every request crosses both Strait proxies: per CPU-second they do twice the proxy hops.
  const straitHopsPerCpuSecond = (2 * strait.rps) / strait.proxyCores;
  const nginxHopsPerCpuSecond = ngx.rps / ngx.proxyCores;
  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
  console.log('\nsummary');
  console.log(`  Strait adds p50 ${ms(added('strait', 'p50'))} ms (target ≤ 0.5), p99 ${ms(added('strait', 'p99'))} ms (target ≤ 2); nginx adds p50 ${ms(added('nginx', 'p50'))}, p99 ${ms(added('nginx', 'p99'))}`);
  console.log(`  one core: Strait pair ${strait.rps.toFixed(0)} req/s, nginx ${ngx.rps.toFixed(0)} req/s (${pct(strait.rps, ngx.rps)})`);
  console.log(`  proxy hops per CPU-second: Strait ${straitHopsPerCpuSecond.toFixed(0)}, nginx ${nginxHopsPerCpuSecond.toFixed(0)} (${pct(straitHopsPerCpuSecond, nginxHopsPerCpuSecond)}, target ≥ 50 %)`);
  console.log(`  RSS peak: client proxy ${peak.client.toFixed(1)} MB, server proxy ${peak.server.toFixed(1)} MB (target ≤ 60), nginx ${peak.nginx.toFixed(1)} MB`);
  console.log(`  load average before ${loadBefore}, after ${load()}`);
  if (PROFILE_DIR) console.log(`  CPU profiles in ${PROFILE_DIR}`);

  const row = (name: string) => {
    const f = fixedResults[name]!;
    const adds = name === 'direct' ? '—' : `${ms(added(name, 'p50'))} / ${ms(added(name, 'p99'))}`;
    const m = maxResults[name]!;
    return `| ${name} | ${ms(f.p50)} | ${ms(f.p90)} | ${ms(f.p99)} | ${ms(f.p999)} | ${adds} | ${m.rps.toFixed(0)} |`;
  };
  console.log(`\n| path | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 / p99 ms | max req/s, proxies on one core |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const name of ['direct', 'strait', 'nginx']) console.log(row(name));
}

/** Stops every child, waiting for each (a profiled proxy writes its profile as it exits). */
async function cleanup(): Promise<void> {
  await Promise.all(
    children.map((child) => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(undefined);
      child.once('exit', resolve);
      child.kill('SIGTERM');
    })),
  );
  rmSync(work, { recursive: true, force: true });
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(err);
    await cleanup();
    process.exit(1);
  },
);
