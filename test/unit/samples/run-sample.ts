// Starts a sample app from its TypeScript source as a real child process, the way the runtime
// starts a pod: its own loopback address in POD_IP, its name in POD_NAME.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningSample {
  child: ChildProcess;
  ip: string;
  /** Everything the sample wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches `pattern` (log lines arrive a moment after the response). */
  waitForStdout(pattern: RegExp): Promise<void>;
  /** http://<ip>:<port><path> */
  url(port: number, path: string): string;
  /** Resolves when the process has exited. */
  exited: Promise<Exit>;
  /** SIGTERM, then the exit. */
  stop(): Promise<Exit>;
}

/** A loopback address of its own, away from the blocks the runtime hands to clusters. */
export function freshLoopbackIp(): string {
  const octet = () => 1 + Math.floor(Math.random() * 250);
  return `127.${200 + Math.floor(Math.random() * 50)}.${octet()}.${octet()}`;
}

/** The parent's environment without anything that would name the pod for the child. */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['POD_NAME', 'POD_IP', 'HOSTNAME', 'SERVICE_VERSION', 'PORT', 'PODINFO_PORT', 'FAILURE_RATE']) delete env[name];
  return env;
}

function spawnSample(sample: string, env: Record<string, string>): { child: ChildProcess; stdout(): string; stderr(): string; exited: Promise<Exit> } {
  const child = spawn(process.execPath, ['--import', 'tsx', `samples/${sample}.ts`], {
    cwd: ROOT,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * Start `samples/<sample>.ts` with POD_IP set to a fresh loopback address and `env` on top, and wait
 * until its stdout matches `readyLine` (its start-up line). Rejects, with its output, if it exits first.
 */
export async function startSample(sample: string, env: Record<string, string> = {}, readyLine = / listening on /): Promise<RunningSample> {
  const ip = env.POD_IP ?? freshLoopbackIp();
  const running = spawnSample(sample, { POD_IP: ip, ...env });
  const waitForStdout = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (pattern.test(running.stdout())) {
          running.child.stdout?.off('data', check);
          resolve();
        }
      };
      running.child.stdout?.on('data', check);
      check();
    });
  const ready = waitForStdout(readyLine);
  const outcome = await Promise.race([ready.then(() => 'ready' as const), running.exited]);
  if (outcome !== 'ready') {
    throw new Error(`sample ${sample} exited (${JSON.stringify(outcome)}) before it was ready:\n${running.stdout()}${running.stderr()}`);
  }
  return {
    ...running,
    ip,
    waitForStdout,
    url: (port, path) => `http://${ip}:${port}${path}`,
    stop: async () => {
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGTERM');
      return running.exited;
    },
  };
}

/** Run a sample that is expected to refuse to start; its exit and what it printed. */
export async function runUntilExit(sample: string, env: Record<string, string>): Promise<Exit & { stderr: string }> {
  const running = spawnSample(sample, { POD_IP: freshLoopbackIp(), ...env });
  const exit = await running.exited;
  return { ...exit, stderr: running.stderr() };
}
