// A cluster's runtime in the test process: a memory store, the workload controller and the pod
// supervisor over a temporary state directory, torn down (every process killed) after the test.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Resource } from '../../src/api/types.js';
import { LocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/store.js';
import type { Container, Pod } from '../../src/runtime/pod-types.js';
import { killRecordedProcesses, podLogPath, startPodSupervisor, type PodSupervisor } from '../../src/runtime/pods.js';
import { processStartTicks, readRecord, type ProcessRecord } from '../../src/runtime/processes.js';
import { podDirectory } from '../../src/runtime/pod-runner.js';
import { startWorkloadController, type WorkloadController } from '../../src/runtime/workloads.js';

/** An HTTP server on POD_IP:PORT answering with the pod's name. */
export const SERVER_SCRIPT =
  "require('http').createServer((q, s) => s.end(process.env.POD_NAME + ' ' + process.env.POD_IP)).listen(Number(process.env.PORT), process.env.POD_IP)";

export function serverContainer(port: number, name = 'server'): Container {
  return {
    name,
    image: 'strait-test/server',
    command: [process.execPath, '-e', SERVER_SCRIPT],
    env: [{ name: 'PORT', value: String(port) }],
    ports: [{ containerPort: port, protocol: 'TCP' }],
  };
}

export function deployment(name: string, replicas: number, containers: Container[], namespace = 'default'): Resource {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { app: name } },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers } } },
  };
}

export class Runtime {
  supervisor: PodSupervisor | undefined;
  controller: WorkloadController | undefined;

  constructor(
    readonly store: Store,
    readonly dir: string,
    readonly index: number,
  ) {}

  async startSupervisor(): Promise<void> {
    this.supervisor = await startPodSupervisor({ store: this.store, cluster: { name: 'test', index: this.index, dir: this.dir } });
  }

  async stopSupervisor(stopPods: boolean): Promise<void> {
    await this.supervisor?.stop({ stopPods });
    this.supervisor = undefined;
  }

  async pods(namespace = 'default'): Promise<Pod[]> {
    return (await this.store.list('Pod', { namespace })).items as Pod[];
  }

  /** The recorded process of a pod's container. */
  record(pod: Pod, container: string): ProcessRecord | undefined {
    return readRecord(podDirectory(this.dir, pod.metadata.namespace ?? 'default', pod.metadata.name), container);
  }

  log(pod: Pod, container: string): string {
    try {
      return readFileSync(podLogPath(this.dir, pod.metadata.namespace ?? 'default', pod.metadata.name, container), 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the namespace has `count` pods, all Running and Ready; returns them. */
  async readyPods(count: number, namespace = 'default', timeoutMs = 15_000): Promise<Pod[]> {
    return waitFor(`${count} ready pods in ${namespace}`, async () => {
      const pods = await this.pods(namespace);
      return pods.length === count && pods.every((p) => p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ? pods : undefined;
    }, timeoutMs);
  }
}

/**
 * Starts a runtime (supervisor and, unless told otherwise, the workload controller) for cluster
 * `index` (use one no other test uses: the pods bind 127.(20+index).x.y); everything it started is
 * stopped when the test ends, passed or failed.
 */
export async function startRuntime(t: TestContext, index: number, opts: { controller?: boolean } = {}): Promise<Runtime> {
  const dir = mkdtempSync(join(tmpdir(), 'strait-runtime-'));
  const store = LocalStore.memory();
  const runtime = new Runtime(store, dir, index);
  t.after(async () => {
    await runtime.controller?.stop();
    await runtime.supervisor?.stop({ stopPods: true });
    await killRecordedProcesses(dir);
    await store.close();
    // Whatever still runs in a pod directory escaped the runtime: kill it, and fail the test.
    const leaked = processesUnder(dir);
    for (const pid of leaked) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(leaked, [], 'processes left running after the runtime stopped');
  });
  await runtime.startSupervisor();
  if (opts.controller !== false) runtime.controller = await startWorkloadController(store);
  return runtime;
}

/** Processes whose working directory is inside `dir` (pod processes run in their pod directory). */
function processesUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/cwd`).startsWith(dir + '/');
      } catch {
        return false;
      }
    });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function isRunning(record: ProcessRecord | undefined): boolean {
  return record !== undefined && processStartTicks(record.pid) === record.startTicks;
}

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}
