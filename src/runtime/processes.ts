// Pod processes as the operating system sees them: started detached in their own process group
// (so they outlive a crashed control plane), recorded on disk with the start time the kernel gives
// them (so a restarted control plane can tell its process from a later one that reuses the pid),
// watched, and stopped as a group.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What is kept on disk about a running container process. */
export interface ProcessRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
  startTicks: string;
  /** The Pod object the process belongs to; a later pod of the same name is another pod. */
  podUid: string;
  startedAt: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** False for an adopted process: it is not our child, so its exit status cannot be read. */
  known: boolean;
}

/** A process being watched: a child just started, or one adopted from a previous control plane. */
export interface WatchedProcess {
  readonly record: ProcessRecord;
  /** Resolves once the process has exited. */
  readonly exited: Promise<ProcessExit>;
  /** Stops watching; the process keeps running. */
  release(): void;
}

const ADOPTED_POLL_MS = 1000;

/** The start time of a live process, or undefined when there is none (or only a zombie). */
export function processStartTicks(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** True when the recorded process is still the one running under its pid. */
export function isAlive(record: ProcessRecord): boolean {
  return processStartTicks(record.pid) === record.startTicks;
}

export interface StartOptions {
  /** An absolute path. */
  executable: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** stdout and stderr are appended here. */
  logPath: string;
  podUid: string;
}

/** Starts a process in a new process group, its output appended to the log. */
export async function startProcess(opts: StartOptions): Promise<WatchedProcess> {
  mkdirSync(dirname(opts.logPath), { recursive: true });
  const log = openSync(opts.logPath, 'a');
  let child;
  try {
    child = spawn(opts.executable, opts.args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<ProcessExit>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal, known: true }));
  });
  const pid = await new Promise<number>((resolvePid, reject) => {
    child.once('spawn', () => resolvePid(child.pid!));
    child.once('error', reject);
  });
  child.unref();
  const startTicks = processStartTicks(pid);
  const record: ProcessRecord = { pid, startTicks: startTicks ?? '', podUid: opts.podUid, startedAt: new Date().toISOString() };
  return { record, exited, release: () => child.removeAllListeners('exit') };
}

/** Watches a process that is not our child by polling /proc. */
export function adoptProcess(record: ProcessRecord): WatchedProcess {
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<ProcessExit>((resolveExit) => {
    timer = setInterval(() => {
      if (isAlive(record)) return;
      clearInterval(timer);
      resolveExit({ code: null, signal: null, known: false });
    }, ADOPTED_POLL_MS);
    timer.unref();
  });
  return { record, exited, release: () => clearInterval(timer) };
}

/** Sends a signal to a whole process group; false when the group no longer exists. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Stops a process and its group: SIGTERM, then SIGKILL once `graceMs` has passed, and resolves
 * when the process has exited. Checks the recorded start time first, so a pid reused by
 * another process is never signalled.
 */
export async function terminate(record: ProcessRecord, graceMs: number, exited?: Promise<unknown>): Promise<void> {
  if (!isAlive(record)) return;
  signalGroup(record.pid, 'SIGTERM');
  // Polling /proc as well keeps the event loop alive until the process is gone: the exit event of
  // a detached, unreferenced child alone would not.
  const gone = exited ? Promise.race([exited, waitUntilDead(record)]) : waitUntilDead(record);
  const inTime = await Promise.race([gone.then(() => true), sleep(graceMs).then(() => false)]);
  // Whatever the process left behind in its group goes too, as a container's processes do.
  signalGroup(record.pid, 'SIGKILL');
  if (!inTime) await gone;
}

async function waitUntilDead(record: ProcessRecord): Promise<void> {
  while (isAlive(record)) await sleep(50);
}

// Records: one JSON file per container in the pod's directory, replaced atomically.

const RECORD_SUFFIX = '.process.json';

function recordPath(podDir: string, container: string): string {
  return join(podDir, container + RECORD_SUFFIX);
}

/** The containers of a pod directory that have a process record. */
export function recordedContainers(podDir: string): string[] {
  let files: string[];
  try {
    files = readdirSync(podDir);
  } catch {
    return [];
  }
  return files.filter((f) => f.endsWith(RECORD_SUFFIX)).map((f) => f.slice(0, -RECORD_SUFFIX.length));
}

export function writeRecord(podDir: string, container: string, record: ProcessRecord): void {
  const path = recordPath(podDir, container);
  writeFileSync(path + '.tmp', JSON.stringify(record) + '\n');
  renameSync(path + '.tmp', path);
}

export function readRecord(podDir: string, container: string): ProcessRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(recordPath(podDir, container), 'utf8')) as Partial<ProcessRecord>;
    if (typeof r.pid !== 'number' || typeof r.startTicks !== 'string' || typeof r.podUid !== 'string' || typeof r.startedAt !== 'string') return undefined;
    return r as ProcessRecord;
  } catch {
    return undefined;
  }
}

export function removeRecord(podDir: string, container: string): void {
  rmSync(recordPath(podDir, container), { force: true });
}

/**
 * The absolute path a container command runs: a bare name is looked up in PATH, as a shell does;
 * a relative path is taken from the current directory. Undefined when there is no such executable.
 */
export function resolveCommand(command: string, pathVariable = process.env.PATH ?? ''): string | undefined {
  if (command === '') return undefined;
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(command)]
    : pathVariable.split(delimiter).filter((d) => d !== '').map((d) => join(d, command));
  return candidates.find(isExecutableFile);
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
