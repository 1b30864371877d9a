// Test support: run the real `strait` CLI against a private state directory, and check that
// nothing it started is left behind.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blockPrefix } from '../../src/runtime/addresses.js';
import { readMesh } from '../../src/runtime/home.js';

export const STRAIT_BIN = fileURLToPath(new URL('../../bin/strait.js', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Mesh {
  readonly home: string;

  /** `127.20.` for a cluster of this mesh whose block is 127.20.0.0/16. */
  blockPrefix(cluster: string): string {
    return `${blockPrefix(readMesh(this.home).clusters.find((c) => c.name === cluster)!.index)}.`;
  }

  constructor(prefix = 'strait-test-') {
    this.home = mkdtempSync(join(tmpdir(), prefix));
  }

  /** Runs `strait ARGS…` with this mesh's STRAIT_HOME; never throws on a non-zero exit. */
  run(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [STRAIT_BIN, ...args], {
        env: { ...process.env, ...opts.env, STRAIT_HOME: this.home, NO_COLOR: '1' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  /** Like run, but fails the test with the output when the exit code is not 0. */
  async ok(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`strait ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.ok([...args, '-o', 'json'])) as T;
  }

  /** Processes whose working directory lies in this mesh's state directory. */
  processes(): number[] {
    return processesUnder(this.home);
  }

  /** Stops everything and deletes the state directory. */
  async destroy(): Promise<void> {
    await this.run(['down']).catch(() => undefined);
    for (const pid of this.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(this.home, { recursive: true, force: true });
  }
}

export function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(dir + '/')) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Listening TCP sockets (address:port) in the given first-two-octet prefixes, e.g. "127.20." */
export function listeningOn(prefixes: string[]): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] !== '0A') continue; // LISTEN
    const [hexAddr, hexPort] = (cols[1] ?? '').split(':');
    if (!hexAddr || !hexPort) continue;
    const bytes = hexAddr.match(/../g)!.map((b) => parseInt(b, 16)).reverse();
    const addr = `${bytes.join('.')}:${parseInt(hexPort, 16)}`;
    if (prefixes.some((p) => addr.startsWith(p))) out.push(addr);
  }
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}
