// The gateway benchmark, one command:
//   node --import tsx bench/gateway/run.ts [--quick] [--same-core | --shared] [--profile]
// Side by side in one run, with the same client and sink processes: (a) straight to the sink,
// (b) through the gateway's SNI splice. Two kinds of traffic: mTLS (what the mesh sends through a
// gateway: the TLS session runs end to end and the gateway only copies its records) and raw TCP
// after a ClientHello (nothing but copying, the gateway's worst case relative to direct). Measured:
// throughput (MB/s at the sink, one and four streams), the ratio of the two, the MB/s the gateway
// moves per CPU-second it uses (its capacity on one core), and the round-trip latency of a 64-byte
// request/response (p50/p90/p99). Throughput rounds alternate, direct then gateway; on a machine
// shared with other work, noise only ever takes throughput away, so the headline figures are the
// best round of each path, and the median of the pairs' ratios is shown beside them.
//
// Placement: by default the client and sink share core 0 and the gateway has core 1, as in a
// deployment where the gateway runs on its own machine; `--same-core` puts the gateway on core 0 too
// (no cross-core wake-ups; the gateway's CPU then comes out of the endpoints' share); `--shared`
// lets all three float over every core.
// `--profile` writes a CPU profile of the gateway to bench/gateway/profiles/.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { endpointRouteKey } from '../../src/api/route-keys.js';
import type { Route } from '../../src/gateway/routes.js';
import { spiffeId } from '../../src/identity/spiffe.js';
import { issueMaterial, meshPki } from '../../test/unit/identity/fixtures.js';
import { ask } from './ipc.js';
import type { Mode, Target } from './load.js';
import type { SinkPorts } from './sink.js';

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const SHARED = args.has('--shared') || cpus().length < 2;
const PROFILE = args.has('--profile');
// Short rounds in alternating pairs: on a shared machine, both paths of a pair see the same noise.
const ROUNDS = QUICK ? 3 : 9;
const WARMUP_MS = QUICK ? 300 : 500;
const MEASURE_MS = QUICK ? 1000 : 2000;
const STREAMS = [1, 4];
const RTT = { size: 64, warmup: 1000, iterations: QUICK ? 2000 : 10_000 };
const LOAD_CORE = '0';
const SAME_CORE = args.has('--same-core');
const GATEWAY_CORE = SAME_CORE ? LOAD_CORE : '1';
const HERE = new URL('.', import.meta.url).pathname;

const children: ChildProcess[] = [];

function start(file: string, core: string, profile = false): ChildProcess {
  const execArgv = ['--import', 'tsx', ...(profile ? ['--cpu-prof', '--cpu-prof-dir', join(HERE, 'profiles')] : [])];
  const child = fork(join(HERE, file), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  // Every thread, so that libuv's and V8's helpers stay on the same core.
  if (!SHARED) execFileSync('taskset', ['-a', '-cp', core, String(child.pid)], { stdio: 'ignore' });
  return child;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function machine(): { cpu: string; cores: number; memoryGb: number; node: string; kernel: string } {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return {
    cpu: model,
    cores: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
  };
}

async function main(): Promise<void> {
  const { issuers } = await meshPki(['bench']);
  const ca = new CertificateAuthority({ issuer: issuers.bench!, trustDomain: 'cluster.local' });
  const sinkName = { namespace: 'bench', serviceAccount: 'sink' };
  const [sinkMaterial, clientMaterial, gatewayMaterial] = await Promise.all([
    issueMaterial(ca, sinkName),
    issueMaterial(ca, { namespace: 'bench', serviceAccount: 'load' }),
    issueMaterial(ca, { namespace: 'strait-system', serviceAccount: 'gateway' }),
  ]);

  const sink = start('sink.ts', LOAD_CORE);
  const load = start('load.ts', LOAD_CORE);
  const gateway = start('gateway-process.ts', GATEWAY_CORE, PROFILE);
  const { ports } = await ask<{ ports: SinkPorts }>(sink, { op: 'start', material: sinkMaterial });
  const key = (name: string) => endpointRouteKey('bench', 'bench', name);
  const routes: [string, Route][] = [
    [key('tls-count'), { kind: 'endpoint', host: '127.0.0.1', port: ports.tlsCount }],
    [key('tls-echo'), { kind: 'endpoint', host: '127.0.0.1', port: ports.tlsEcho }],
    [key('raw-count'), { kind: 'endpoint', host: '127.0.0.1', port: ports.rawCount }],
    [key('raw-echo'), { kind: 'endpoint', host: '127.0.0.1', port: ports.rawEcho }],
  ];
  const { port: gatewayPort } = await ask<{ port: number }>(gateway, { op: 'start', material: gatewayMaterial, routes });

  const target = (mode: Mode, use: 'count' | 'echo', through: 'direct' | 'gateway'): Target => {
    const sinkPort = mode === 'tls' ? (use === 'count' ? ports.tlsCount : ports.tlsEcho) : use === 'count' ? ports.rawCount : ports.rawEcho;
    return {
      mode,
      port: through === 'direct' ? sinkPort : gatewayPort,
      servername: key(`${mode}-${use}`),
      material: clientMaterial,
      expected: spiffeId('cluster.local', sinkName),
    };
  };

  /** MB/s at the sink while `streams` connections write as fast as they can; and the gateway's CPU use meanwhile. */
  const throughput = async (t: Target, streams: number) => {
    await ask(load, { op: 'stream', target: t, streams });
    await sleep(WARMUP_MS);
    const before = { bytes: (await ask<{ bytes: number }>(sink, { op: 'bytes' })).bytes, at: performance.now(), cpu: cpuSeconds(gateway.pid!) };
    await sleep(MEASURE_MS);
    const after = { bytes: (await ask<{ bytes: number }>(sink, { op: 'bytes' })).bytes, at: performance.now(), cpu: cpuSeconds(gateway.pid!) };
    await ask(load, { op: 'stop' });
    const seconds = (after.at - before.at) / 1000;
    return { mbps: (after.bytes - before.bytes) / seconds / 1e6, gatewayCores: (after.cpu - before.cpu) / seconds };
  };

  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, Linux ${m.kernel}`);
  console.log(SHARED ? 'placement: all processes share every core' : `placement: client and sink on core ${LOAD_CORE}, gateway on core ${GATEWAY_CORE}`);
  console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`throughput: ${ROUNDS} pairs of rounds (direct, then gateway), ${WARMUP_MS} ms warm-up + ${MEASURE_MS} ms measured each\n`);
  console.log('| traffic | streams | direct (best) | gateway (best) | gateway / direct | median of the pairs\' ratios | gateway MB/s per CPU-second |');

  const rows: string[] = [];
  for (const mode of ['tls', 'raw'] as const) {
    for (const streams of STREAMS) {
      const direct: number[] = [];
      const through: number[] = [];
      const ratios: number[] = [];
      const capacity: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const d = await throughput(target(mode, 'count', 'direct'), streams);
        const g = await throughput(target(mode, 'count', 'gateway'), streams);
        direct.push(d.mbps);
        through.push(g.mbps);
        ratios.push(g.mbps / d.mbps);
        capacity.push(g.mbps / g.gatewayCores);
      }
      const [bestDirect, bestThrough] = [Math.max(...direct), Math.max(...through)];
      const row = `| ${mode === 'tls' ? 'mTLS' : 'raw TCP'} | ${streams} | ${bestDirect.toFixed(0)} | ${bestThrough.toFixed(0)} | **${((bestThrough / bestDirect) * 100).toFixed(1)} %** | ${(median(ratios) * 100).toFixed(1)} % | ${median(capacity).toFixed(0)} |`;
      rows.push(row);
      console.log(row);
    }
  }

  const latencyRows: string[] = [];
  for (const mode of ['tls', 'raw'] as const) {
    type Rtt = { p50: number; p90: number; p99: number };
    const direct = await ask<Rtt>(load, { op: 'rtt', target: target(mode, 'echo', 'direct'), ...RTT });
    const through = await ask<Rtt>(load, { op: 'rtt', target: target(mode, 'echo', 'gateway'), ...RTT });
    const ms = (v: number) => v.toFixed(3);
    const row = `| ${mode === 'tls' ? 'mTLS' : 'raw TCP'} | ${ms(direct.p50)} / ${ms(direct.p90)} / ${ms(direct.p99)} | ${ms(through.p50)} / ${ms(through.p90)} / ${ms(through.p99)} | +${ms(through.p50 - direct.p50)} / +${ms(through.p99 - direct.p99)} |`;
    latencyRows.push(row);
  }

  const { stats } = await ask<{ stats: { refused: Record<string, number>; endpoint: { upstreamFailures: number } } }>(gateway, { op: 'stats' });
  const refused = Object.values(stats.refused).reduce((a, b) => a + b, 0);

  console.log('\nThroughput (MB/s at the sink)\n');
  console.log('| traffic | streams | direct (best) | through the gateway (best) | gateway / direct | median of the pairs\' ratios | gateway MB/s per CPU-second |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log(`\nRound trip of a ${RTT.size}-byte request and its echo, one connection, ${RTT.iterations} sequential requests (ms, p50 / p90 / p99)\n`);
  console.log('| traffic | direct | through the gateway | added (p50 / p99) |');
  console.log('|---|---:|---:|---:|');
  for (const r of latencyRows) console.log(r);
  console.log(`\ngateway: ${refused} connections refused, ${stats.endpoint.upstreamFailures} upstream failures (both should be 0)`);
  console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // The gateway exits by itself after 'stop', writing its profile on the way out.
  const exited = new Promise((resolve) => gateway.once('exit', resolve));
  await ask(gateway, { op: 'stop' });
  await exited;
}

main()
  .catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) if (child.exitCode === null) child.kill();
  });
