// One pod on this machine: a process per container, restarted with back-off when it exits, probed
// for readiness, and the pod's status kept in the store as Kubernetes shapes it.
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect } from 'node:net';
import { copyFileSync, mkdirSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { refOf } from '../api/types.js';
import { NotFoundError, type Store } from '../store/store.js';
import { containerLaunch, isLaunchProblem, namespaceOf, readinessPort } from './launch.js';
import { errorMessage, type RuntimeLog } from './log.js';
import type { Container, ContainerState, ContainerStatus, Pod, PodCondition, PodStatus } from './pod-types.js';
import {
  adoptProcess,
  isAlive,
  readRecord,
  removeRecord,
  signalGroup,
  startProcess,
  terminate,
  writeRecord,
  type ProcessExit,
  type ProcessRecord,
  type WatchedProcess,
} from './processes.js';

const FIRST_RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A container that ran this long before exiting starts its back-off afresh. */
const BACKOFF_RESET_AFTER_MS = 2 * MAX_RESTART_DELAY_MS;
const MAX_GRACE_MS = 5000;
const PROBE_UNTIL_READY_MS = 100;
const PROBE_WHEN_READY_MS = 1000;
const PROBE_TIMEOUT_MS = 1000;
/** A container log bigger than this is rotated (as the kubelet's containerLogMaxSize). */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
/** Consecutive failed probes that make a ready container unready (Kubernetes' failureThreshold). */
const PROBE_FAILURE_THRESHOLD = 3;

/** The wait before the n-th consecutive restart (n ≥ 1): 1 s, 2 s, 4 s, … capped at 30 s. */
export function restartDelayMs(consecutiveFailures: number): number {
  const doublings = Math.max(0, consecutiveFailures - 1);
  return Math.min(FIRST_RESTART_DELAY_MS * 2 ** Math.min(doublings, 30), MAX_RESTART_DELAY_MS);
}

/** How long a pod's processes get between SIGTERM and SIGKILL: its grace period, at most 5 s. */
export function gracePeriodMs(pod: Pod): number {
  const seconds = pod.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.min(Math.max(seconds, 0) * 1000, MAX_GRACE_MS);
}

export function podDirectory(clusterDir: string, namespace: string, pod: string): string {
  return join(clusterDir, 'pods', namespace, pod);
}

export interface PodRunnerContext {
  /** Where the pod's status goes: the cluster's store, or the Kubernetes API for the node agent. */
  store: Pick<Store, 'updateStatus'>;
  clusterDir: string;
  log: RuntimeLog;
  credentials?: (pod: Pod) => string;
}

/** The pod's platform credential, in its directory (every container's working directory). */
export const IDENTITY_TOKEN_FILE = 'identity-token';

export class PodRunner {
  readonly uid: string;
  readonly dir: string;
  private readonly containers: ContainerRunner[];
  private readonly startTime: string;
  private readonly transitions = new Map<PodCondition['type'], { status: PodCondition['status']; time: string }>();
  private halted = false;
  private statusDirty = false;
  private writing: Promise<void> | undefined;
  private lastWritten = '';

  constructor(
    readonly pod: Pod,
    readonly ip: string,
    private readonly ctx: PodRunnerContext,
  ) {
    this.uid = pod.metadata.uid ?? '';
    this.dir = podDirectory(ctx.clusterDir, namespaceOf(pod), pod.metadata.name);
    const previous = pod.status;
    this.startTime = previous?.startTime ?? new Date().toISOString();
    for (const c of previous?.conditions ?? []) this.transitions.set(c.type, { status: c.status, time: c.lastTransitionTime ?? this.startTime });
    this.containers = (pod.spec?.containers ?? []).map(
      (spec) =>
        new ContainerRunner(
          this,
          spec,
          previous?.containerStatuses?.find((s) => s.name === spec.name),
        ),
    );
  }

  get name(): string {
    return `${namespaceOf(this.pod)}/${this.pod.metadata.name}`;
  }

  get log(): RuntimeLog {
    return this.ctx.log;
  }

  /**
   * Adopts the pod's recorded processes that still run and starts the others, in container order;
   * resolves once the pod's status says so.
   */
  async begin(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.writeCredentials();
    this.changed();
    for (const container of this.containers) {
      if (this.halted) return;
      await container.begin();
    }
    await this.writing;
  }

  /** (Re)writes the pod's credential, atomically, readable only by its owner. */
  writeCredentials(): void {
    if (!this.ctx.credentials) return;
    const file = join(this.dir, IDENTITY_TOKEN_FILE);
    writeFileSync(file + '.tmp', this.ctx.credentials(this.pod), { mode: 0o600 });
    renameSync(file + '.tmp', file);
  }

  /** Stops supervising: with `kill`, the processes are stopped (and waited for); otherwise they keep running. */
  async halt(kill: boolean): Promise<void> {
    this.halted = true;
    await Promise.all(this.containers.map((c) => c.halt(kill, gracePeriodMs(this.pod))));
    await this.writing;
  }

  /**
   * Keeps each container's log under LOG_ROTATE_BYTES: a bigger one is copied to `<log>.1` and
   * emptied (the process keeps appending to the same file, so it cannot simply be renamed).
   */
  rotateLogs(): void {
    for (const container of this.containers) {
      const path = container.logPath;
      if (fileSize(path) <= LOG_ROTATE_BYTES) continue;
      copyFileSync(path, path + '.1');
      truncateSync(path, 0);
    }
  }

  get isHalted(): boolean {
    return this.halted;
  }

  /** Something in the pod's status changed: write it (writes are coalesced, one at a time). */
  changed(): void {
    if (this.halted) return;
    this.statusDirty = true;
    this.writing ??= this.writeStatus();
  }

  private async writeStatus(): Promise<void> {
    while (this.statusDirty && !this.halted) {
      this.statusDirty = false;
      // Let changes made in the same turn land in one write.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const status = this.status();
      const text = JSON.stringify(status);
      if (text === this.lastWritten) continue;
      try {
        await this.ctx.store.updateStatus(refOf(this.pod), status);
        this.lastWritten = text;
      } catch (err) {
        // A pod deleted meanwhile is about to be halted by the supervisor.
        if (!(err instanceof NotFoundError)) this.log.warn(`pod ${this.name}: cannot write its status: ${errorMessage(err)}`);
      }
    }
    this.writing = undefined;
  }

  status(): PodStatus {
    const statuses = this.containers.map((c) => c.status());
    const allReady = statuses.length > 0 && statuses.every((s) => s.ready);
    const status: PodStatus = {
      phase: this.phase(statuses),
      podIP: this.ip,
      podIPs: [{ ip: this.ip }],
      startTime: this.startTime,
      conditions: [
        this.condition('PodScheduled', true),
        this.condition('Initialized', true),
        this.condition('ContainersReady', allReady),
        this.condition('Ready', allReady),
      ],
      containerStatuses: statuses,
    };
    return status;
  }

  private phase(statuses: ContainerStatus[]): PodStatus['phase'] {
    if (statuses.length > 0 && statuses.every((s) => s.state?.terminated)) {
      return statuses.every((s) => s.state?.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
    }
    return this.containers.every((c) => c.hasRun) ? 'Running' : 'Pending';
  }

  private condition(type: PodCondition['type'], value: boolean): PodCondition {
    const status = value ? 'True' : 'False';
    let t = this.transitions.get(type);
    if (t?.status !== status) {
      t = { status, time: new Date().toISOString() };
      this.transitions.set(type, t);
    }
    return { type, status, lastTransitionTime: t.time };
  }
}

class ContainerRunner {
  private restartCount: number;
  private state: ContainerState = { waiting: { reason: 'ContainerCreating' } };
  private lastState: ContainerState;
  private ready = false;
  private process: WatchedProcess | undefined;
  /** Failed starts and exits since the container last ran for a while: drives the back-off. */
  private failures = 0;
  /** Whether a process of this container has run since the pod was created. */
  hasRun: boolean;
  private restartTimer: NodeJS.Timeout | undefined;
  private launching: Promise<void> | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private halted = false;

  constructor(
    private readonly pod: PodRunner,
    private readonly spec: Container,
    private readonly previous: ContainerStatus | undefined,
  ) {
    this.restartCount = previous?.restartCount ?? 0;
    this.lastState = previous?.lastState ?? {};
    this.hasRun = previous?.started === true || this.restartCount > 0;
  }

  get logPath(): string {
    return join(this.pod.dir, `${this.spec.name}.log`);
  }

  private get label(): string {
    return `pod ${this.pod.name} container ${this.spec.name}`;
  }

  status(): ContainerStatus {
    return {
      name: this.spec.name,
      image: this.spec.image ?? '',
      imageID: this.spec.image ?? '',
      ready: this.ready,
      started: this.state.running !== undefined,
      restartCount: this.restartCount,
      state: this.state,
      lastState: this.lastState,
    };
  }

  /** Adopts the recorded process when it is this pod's and still alive; starts one otherwise. */
  async begin(): Promise<void> {
    const record = readRecord(this.pod.dir, this.spec.name);
    if (record && record.podUid === this.pod.uid && isAlive(record)) {
      this.pod.log.info(`${this.label}: adopted running process ${record.pid}`);
      // Still the process that was ready: it stays ready (no blip for its clients) unless the probe says otherwise.
      this.ready = this.previous?.ready ?? false;
      this.watch(adoptProcess(record));
      return;
    }
    if (record) {
      // A process of an earlier pod of the same name must not linger beside this one.
      if (record.podUid !== this.pod.uid) await terminate(record, MAX_GRACE_MS);
      removeRecord(this.pod.dir, this.spec.name);
      if (record.podUid === this.pod.uid) {
        this.lastState = { terminated: unknownExit(record, new Date().toISOString()) };
        this.restartCount++;
      }
    }
    this.launch();
    await this.launching;
  }

  private launch(): void {
    this.restartTimer = undefined;
    if (this.halted) return;
    this.launching = this.start().finally(() => (this.launching = undefined));
  }

  private launchAfter(delayMs: number, beforeLaunch?: () => void): void {
    this.restartTimer = setTimeout(() => {
      beforeLaunch?.();
      this.launch();
    }, delayMs);
  }

  private async start(): Promise<void> {
    const launch = containerLaunch(this.pod.pod, this.spec, this.pod.ip);
    if (isLaunchProblem(launch)) {
      this.failed(launch.reason, launch.message);
      return;
    }
    let proc: WatchedProcess;
    try {
      proc = await startProcess({
        executable: launch.executable,
        args: launch.args,
        env: launch.env,
        cwd: this.pod.dir,
        logPath: this.logPath,
        podUid: this.pod.uid,
      });
    } catch (err) {
      this.failed('RunContainerError', errorMessage(err));
      return;
    }
    writeRecord(this.pod.dir, this.spec.name, proc.record);
    this.pod.log.info(`${this.label}: started process ${proc.record.pid}: ${launch.executable} ${launch.args.join(' ')}`);
    this.watch(proc);
  }

  /** The container could not be started: say why, and try again after the back-off. */
  private failed(reason: string, message: string): void {
    this.failures++;
    this.state = { waiting: { reason, message } };
    this.pod.log.warn(`${this.label}: ${message}`);
    this.pod.changed();
    this.launchAfter(restartDelayMs(this.failures));
  }

  private watch(proc: WatchedProcess): void {
    this.process = proc;
    this.hasRun = true;
    this.state = { running: { startedAt: proc.record.startedAt } };
    this.pod.changed();
    void proc.exited.then((exit) => this.exited(proc, exit));
    this.probe(proc, 0);
  }

  private exited(proc: WatchedProcess, exit: ProcessExit): void {
    if (this.halted || this.process !== proc) return;
    this.process = undefined;
    removeRecord(this.pod.dir, this.spec.name);
    const finishedAt = new Date().toISOString();
    const terminated = exit.known ? knownExit(proc.record, exit, finishedAt) : unknownExit(proc.record, finishedAt);
    this.pod.log.warn(`${this.label}: process ${proc.record.pid} exited (${terminated.reason}, exit code ${terminated.exitCode})`);
    // Whatever the process left behind in its group goes with it, as a container's processes do.
    signalGroup(proc.record.pid, 'SIGKILL');
    this.ready = false;
    if (Date.parse(finishedAt) - Date.parse(proc.record.startedAt) >= BACKOFF_RESET_AFTER_MS) this.failures = 0;

    const policy = this.pod.pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && terminated.exitCode === 0)) {
      this.state = { terminated };
      this.pod.changed();
      return;
    }
    this.failures++;
    const delay = restartDelayMs(this.failures);
    this.lastState = { terminated };
    const pod = this.pod.pod.metadata;
    this.state = {
      waiting: {
        reason: 'CrashLoopBackOff',
        message: `back-off ${delay / 1000}s restarting failed container=${this.spec.name} pod=${pod.name}_${namespaceOf(this.pod.pod)}(${this.pod.uid})`,
      },
    };
    this.pod.changed();
    this.launchAfter(delay, () => this.restartCount++);
  }

  /**
   * Probes readiness — an HTTP GET when the probe says so, else a TCP connect to the container's
   * port — often until it answers, then every second.
   */
  private probe(proc: WatchedProcess, failures: number): void {
    if (this.halted || this.process !== proc) return;
    const port = readinessPort(this.spec);
    if (port === undefined) {
      this.setReady(true);
      return;
    }
    const httpProbe = this.spec.readinessProbe?.httpGet;
    const path = httpProbe?.path;
    void (path === undefined ? canConnect(this.pod.ip, port) : answersOk(this.pod.ip, port, path, httpProbe?.scheme === 'HTTPS')).then((ok) => {
      if (this.halted || this.process !== proc) return;
      const failed = ok ? 0 : failures + 1;
      if (ok) this.setReady(true);
      else if (!this.ready || failed >= PROBE_FAILURE_THRESHOLD) this.setReady(false);
      this.probeTimer = setTimeout(() => this.probe(proc, failed), this.ready ? PROBE_WHEN_READY_MS : PROBE_UNTIL_READY_MS);
    });
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.pod.changed();
  }

  async halt(kill: boolean, graceMs: number): Promise<void> {
    this.halted = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.probeTimer);
    // A process being started is supervised (and so stopped or left running) like any other.
    await this.launching;
    const proc = this.process;
    if (!proc) return;
    if (!kill) {
      proc.release();
      return;
    }
    await terminate(proc.record, graceMs, proc.exited);
    removeRecord(this.pod.dir, this.spec.name);
  }
}

function knownExit(record: ProcessRecord, exit: ProcessExit, finishedAt: string): NonNullable<ContainerState['terminated']> {
  const signal = exit.signal ? constants.signals[exit.signal] : undefined;
  const exitCode = exit.code ?? 128 + (signal ?? 0);
  const terminated: NonNullable<ContainerState['terminated']> = {
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    startedAt: record.startedAt,
    finishedAt,
  };
  if (signal !== undefined) terminated.signal = signal;
  return terminated;
}

/** An adopted process is not our child, so how it ended is unknown (Kubernetes says the same). */
function unknownExit(record: ProcessRecord, finishedAt: string): NonNullable<ContainerState['terminated']> {
  return {
    exitCode: 137,
    reason: 'ContainerStatusUnknown',
    message: 'the process ended while not a child of this control plane, so its exit status is unknown',
    startedAt: record.startedAt,
    finishedAt,
  };
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Kubernetes' httpGet probe: any status from 200 to 399 is a success; over HTTPS the certificate is not checked, as the kubelet does not. */
function answersOk(host: string, port: number, path: string, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const get = tls ? httpsGet : httpGet;
    const req = get({ host, port, path, timeout: PROBE_TIMEOUT_MS, agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: PROBE_TIMEOUT_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
