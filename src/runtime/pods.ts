// The pod supervisor (the local runtime's kubelet): runs every Pod object of a cluster as processes
// on this machine, each pod on its own loopback address, and keeps the pods' status in the store.
// Pod processes run detached and are recorded on disk, so they survive a control-plane crash and
// the next supervisor adopts them instead of starting second copies.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '../api/types.js';
import { Informer } from '../store/informer.js';
import type { Store } from '../store/store.js';
import { PodAddressAllocator } from './addresses.js';
import { namespaceOf } from './launch.js';
import { errorMessage, silentLog, type RuntimeLog } from './log.js';
import { podDirectory, PodRunner } from './pod-runner.js';
import type { Pod } from './pod-types.js';
import { isAlive, readRecord, recordedContainers, removeRecord, terminate, type ProcessRecord } from './processes.js';

export { checkRunnable, podEnvironment } from './launch.js';
export { IDENTITY_TOKEN_FILE, restartDelayMs } from './pod-runner.js';

const RESYNC_MS = 30_000;
const LOG_CHECK_MS = 10_000;
/** How long a deleted pod keeps serving while proxies learn it is gone. */
const ENDPOINT_DRAIN_MS = 1000;
/** Credentials last a day; renewing hourly keeps every pod's far from expiry. */
const CREDENTIAL_RENEW_MS = 3_600_000;
/** How long killRecordedProcesses waits after SIGTERM before SIGKILL. */
const ORPHAN_GRACE_MS = 5000;

export interface PodSupervisorOptions {
  store: Store;
  cluster: {
    /**
     * Also the name of the cluster's one node: a Pod bound to another node (`spec.nodeName`) is not
     * run here, nor is its status touched, as a kubelet runs only the pods bound to its own node.
     */
    name: string;
    /** Chooses the cluster's address block (see addresses.ts). */
    index: number;
    /** The cluster's state directory; pods live under `<dir>/pods/<namespace>/<pod>/`. */
    dir: string;
  };
  log?: RuntimeLog;
  /**
   * The platform credential each pod proves its identity with (a bootstrap token). Written to
   * `<pod dir>/${IDENTITY_TOKEN_FILE}` (0600) before the pod starts and renewed every hour.
   */
  credentials?: (pod: Pod) => string;
}

export interface PodSupervisor {
  /** Stops supervising. `stopPods`: also stop every pod process and wait for them (`strait down`). */
  stop(opts: { stopPods: boolean }): Promise<void>;
}

/** Where a container's stdout and stderr are appended. */
export function podLogPath(clusterDir: string, namespace: string, pod: string, container: string): string {
  return join(podDirectory(clusterDir, namespace, pod), `${container}.log`);
}

/**
 * Starts supervising the cluster's pods and resolves once every existing pod has been adopted or
 * started.
 */
export async function startPodSupervisor(opts: PodSupervisorOptions): Promise<PodSupervisor> {
  const supervisor = new Supervisor(opts);
  await supervisor.start();
  return { stop: (o) => supervisor.stop(o.stopPods) };
}

function keyOf(pod: Resource): string {
  return `${namespaceOf(pod)}/${pod.metadata.name}`;
}

class Supervisor {
  private readonly store: Store;
  private readonly log: RuntimeLog;
  private readonly dir: string;
  private readonly node: string;
  private readonly addresses: PodAddressAllocator;
  private readonly runners = new Map<string, PodRunner>();
  /** Pods being stopped, by key: a new pod of the same name waits for the old one to be gone. */
  private readonly stopping = new Map<string, Promise<void>>();
  private readonly pods: Informer<Pod>;
  /** Set once the pods found at start are adopted: from then on each change is acted on. */
  private watching = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private logTimer: NodeJS.Timeout | undefined;
  private credentialTimer: NodeJS.Timeout | undefined;
  private readonly credentials: ((pod: Pod) => string) | undefined;
  private stopped = false;

  constructor(opts: PodSupervisorOptions) {
    this.store = opts.store;
    this.log = opts.log ?? silentLog;
    this.dir = opts.cluster.dir;
    this.node = opts.cluster.name;
    this.addresses = new PodAddressAllocator(opts.cluster.index);
    this.credentials = opts.credentials;
    this.pods = new Informer<Pod>({
      store: this.store,
      kind: 'Pod',
      warn: (message) => this.log.warn(message),
      onChange: (previous, current) => {
        if (!this.watching || this.stopped) return;
        if (current) void this.run(current);
        else this.deleted(previous!);
      },
    });
  }

  async start(): Promise<void> {
    await this.pods.start();
    const pods = [...this.pods.values()].filter((pod) => this.runsHere(pod));
    // Every address already held is reserved before any pod is given one.
    const heldBy = new Map<string, string>();
    for (const pod of pods) {
      const ip = pod.status?.podIP;
      if (ip && !heldBy.has(ip) && this.addresses.reserve(ip)) heldBy.set(ip, pod.metadata.uid ?? '');
    }
    const begun = pods.map((pod) => {
      const ip = pod.status?.podIP;
      return this.run(pod, ip && heldBy.get(ip) === pod.metadata.uid ? ip : undefined);
    });
    await this.stopOrphans(new Set(pods.map(keyOf)));
    await Promise.all(begun);
    this.watching = true;
    // Changes while the pods found were being adopted.
    this.resync();
    this.resyncTimer = setInterval(() => this.resync(), RESYNC_MS);
    this.resyncTimer.unref();
    this.logTimer = setInterval(() => this.rotateLogs(), LOG_CHECK_MS);
    this.logTimer.unref();
    if (this.credentials) {
      this.credentialTimer = setInterval(() => this.renewCredentials(), CREDENTIAL_RENEW_MS);
      this.credentialTimer.unref();
    }
  }

  private renewCredentials(): void {
    for (const runner of this.runners.values()) {
      try {
        runner.writeCredentials();
      } catch (err) {
        this.log.warn(`pod ${runner.name}: cannot renew its credential: ${errorMessage(err)}`);
      }
    }
  }

  async stop(stopPods: boolean): Promise<void> {
    this.stopped = true;
    this.pods.stop();
    clearInterval(this.resyncTimer);
    clearInterval(this.logTimer);
    clearInterval(this.credentialTimer);
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all([...runners.map((r) => r.halt(stopPods)), ...this.stopping.values()]);
  }

  /** Brings the supervised set in line with every pod the informer holds (a missed change costs nothing then). */
  private resync(): void {
    if (this.stopped) return;
    const present = new Map([...this.pods.values()].filter((p) => this.runsHere(p)).map((p) => [keyOf(p), p]));
    for (const [key, runner] of this.runners) {
      if (present.get(key)?.metadata.uid !== runner.uid) this.deleted(runner.pod);
    }
    for (const pod of present.values()) void this.run(pod);
  }

  private rotateLogs(): void {
    for (const runner of this.runners.values()) {
      try {
        runner.rotateLogs();
      } catch (err) {
        this.log.warn(`pod ${runner.name}: cannot rotate its logs: ${errorMessage(err)}`);
      }
    }
  }

  /** Unbound pods and pods bound to this node; see PodSupervisorOptions.cluster.name. */
  private runsHere(pod: Pod): boolean {
    const node = pod.spec?.nodeName;
    return node === undefined || node === '' || node === this.node;
  }

  /** Starts supervising a pod unless it already is; `ip`: the address it held before a restart. */
  private async run(pod: Pod, ip?: string): Promise<void> {
    const key = keyOf(pod);
    const current = this.runners.get(key);
    if (!this.runsHere(pod)) {
      // Bound elsewhere (now): whatever of it ran here stops.
      if (current) this.deleted(current.pod);
      return;
    }
    if (current?.uid === pod.metadata.uid) return;
    if (current) this.deleted(current.pod);
    const runner = new PodRunner(pod, ip ?? this.addresses.allocate(), {
      store: this.store,
      clusterDir: this.dir,
      log: this.log,
      credentials: this.credentials,
    });
    this.runners.set(key, runner);
    await this.stopping.get(key);
    if (runner.isHalted) return;
    try {
      await runner.begin();
    } catch (err) {
      this.log.error(`pod ${key}: cannot start: ${errorMessage(err)}`);
    }
  }

  /** The Pod object is gone: stop its processes, free its address and directory. */
  private deleted(pod: Pod): void {
    const key = keyOf(pod);
    const runner = this.runners.get(key);
    if (!runner || runner.uid !== pod.metadata.uid) return;
    this.runners.delete(key);
    const previous = this.stopping.get(key);
    const done = (async () => {
      await previous;
      // The Pod is gone from the store, so discovery is already telling every proxy to stop sending
      // to it; its processes keep serving a moment longer so that calls already routed here finish
      // (what a preStop sleep does on Kubernetes).
      await new Promise((resolve) => setTimeout(resolve, ENDPOINT_DRAIN_MS));
      await runner.halt(true);
      this.addresses.release(runner.ip);
      // Unless a pod of the same name has taken the directory over meanwhile.
      if (!this.runners.has(key)) rmSync(runner.dir, { recursive: true, force: true });
      this.log.info(`pod ${key}: stopped`);
    })()
      .catch((err: unknown) => this.log.error(`pod ${key}: cannot stop: ${errorMessage(err)}`))
      .finally(() => {
        if (this.stopping.get(key) === done) this.stopping.delete(key);
      });
    this.stopping.set(key, done);
  }

  /** Stops processes recorded for pods that no longer exist (deleted while no supervisor ran). */
  private async stopOrphans(present: Set<string>): Promise<void> {
    const orphans = recordedPodDirs(this.dir).filter((p) => !present.has(`${p.namespace}/${p.pod}`));
    await Promise.all(
      orphans.map(async ({ dir }) => {
        await stopRecorded(dir);
        rmSync(dir, { recursive: true, force: true });
      }),
    );
  }
}

interface RecordedPodDir {
  namespace: string;
  pod: string;
  dir: string;
}

function recordedPodDirs(clusterDir: string): RecordedPodDir[] {
  const root = join(clusterDir, 'pods');
  const out: RecordedPodDir[] = [];
  for (const namespace of listDir(root)) {
    for (const pod of listDir(join(root, namespace))) out.push({ namespace, pod, dir: join(root, namespace, pod) });
  }
  return out;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Stops every recorded process of one pod directory and forgets them; returns how many ran. */
async function stopRecorded(podDir: string): Promise<number> {
  const containers = recordedContainers(podDir);
  const records = containers
    .map((container) => ({ container, record: readRecord(podDir, container) }))
    .filter((r): r is { container: string; record: ProcessRecord } => r.record !== undefined);
  const alive = records.filter((r) => isAlive(r.record));
  await Promise.all(alive.map((r) => terminate(r.record, ORPHAN_GRACE_MS)));
  for (const container of containers) removeRecord(podDir, container);
  return alive.length;
}

/**
 * Stops every recorded pod process of a cluster whose control plane is no longer running, so that
 * `strait down` leaves nothing behind. Returns how many processes were still running.
 */
export async function killRecordedProcesses(clusterDir: string): Promise<number> {
  const counts = await Promise.all(recordedPodDirs(clusterDir).map(({ dir }) => stopRecorded(dir)));
  return counts.reduce((a, b) => a + b, 0);
}
