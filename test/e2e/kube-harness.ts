// What the Kubernetes end-to-end tests share: real test clusters from scripts/kube-env.mjs (built on
// first use; the cache makes later runs start in seconds), the built kubectl, what a cluster holds,
// and waits.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { customResourceDefinitions } from '../../src/api/crds.js';
import type { KubeRest } from '../../src/store/kube-rest.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KUBE_ENV = join(ROOT, 'scripts', 'kube-env.mjs');
export const STRAIT = join(ROOT, 'bin', 'strait.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Test clusters of one directory; `down` leaves nothing running. */
export class KubeEnv {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly kubectlPath: string;

  private constructor(readonly clusters: string[]) {
    this.dir = mkdtempSync(join(tmpdir(), 'strait-kube-'));
    this.kubeconfig = join(this.dir, 'kubeconfig');
    this.kubectlPath = join(this.dir, 'bin', 'kubectl');
  }

  /** Builds what the cache lacks (minutes, once), then starts the clusters; `node: false`, without a node agent. */
  static async up(clusters: string[], opts: { node?: boolean } = {}): Promise<KubeEnv> {
    const env = new KubeEnv(clusters);
    const noNode = opts.node === false ? ['--no-node'] : [];
    const r = await run(process.execPath, [KUBE_ENV, 'up', '--clusters', clusters.join(','), '--dir', env.dir, ...noNode], { timeoutMs: 45 * 60_000 });
    if (r.code !== 0) {
      await env.down().catch(() => {});
      env.remove();
      throw new Error(`kube-env up failed (${r.code}):\n${r.stderr}${r.stdout}`);
    }
    return env;
  }

  async down(): Promise<void> {
    const r = await run(process.execPath, [KUBE_ENV, 'down', '--dir', this.dir]);
    if (r.code !== 0) throw new Error(`kube-env down failed: ${r.stderr}`);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  kubectl(context: string, args: string[], input?: string): Promise<Run> {
    return run(this.kubectlPath, ['--kubeconfig', this.kubeconfig, '--context', context, ...args], { input, timeoutMs: 300_000 });
  }

  /** kubectl that must succeed; returns its stdout. */
  async k(context: string, args: string[], input?: string): Promise<string> {
    const r = await this.kubectl(context, args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  async json<T = Record<string, unknown>>(context: string, args: string[]): Promise<T> {
    return JSON.parse(await this.k(context, [...args, '-o', 'json'])) as T;
  }

  /**
   * Every object of every listable kind in `context`, as `resource namespace/name`: what the cluster
   * holds. Kinds whose objects come and go by themselves (events) are left out.
   */
  async inventory(context: string): Promise<Set<string>> {
    const kinds = (await this.k(context, ['api-resources', '--verbs=list', '-o', 'name'])).split('\n').filter((k) => k !== '' && !/^events(\.|$)/.test(k));
    const out = new Set<string>();
    const lists = await Promise.all(kinds.map((kind) => this.k(context, ['get', kind, '-A', '-o', 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\\n"}{end}']).then((text) => ({ kind, text }))));
    for (const { kind, text } of lists) for (const line of text.split('\n')) if (line !== '') out.add(`${kind} ${line}`);
    return out;
  }

  strait(args: string[], opts: { input?: string } = {}): Promise<Run> {
    return run(process.execPath, [STRAIT, ...args], { env: { ...process.env, KUBECONFIG: this.kubeconfig, NO_COLOR: '1' }, input: opts.input });
  }

  clusterDir(cluster: string): string {
    return join(this.dir, cluster);
  }

  /** The cluster's loopback block, `127.X`. */
  prefix(cluster: string): string {
    const state = JSON.parse(readFileSync(join(this.dir, 'kube-env.json'), 'utf8')) as { clusters: { name: string; prefix: string }[] };
    return state.clusters.find((c) => c.name === cluster)!.prefix;
  }
}

/** Polls `check` until it returns something other than undefined/false; fails with `what` after the time-out. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Every CRD's name with its status conditions (`Established: 'True'`, …). */
export async function crdConditions(rest: KubeRest): Promise<Record<string, string>[]> {
  const list = await rest.request<{ items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
  return list.items.map((crd) => Object.fromEntries([['name', crd.metadata.name], ...(crd.status?.conditions ?? []).map((c) => [c.type, c.status])]) as Record<string, string>);
}

/** Applies every CRD Strait defines (server-side, strict field validation) and waits until each is served. */
export async function installCrds(rest: KubeRest): Promise<void> {
  for (const crd of customResourceDefinitions()) {
    await rest.request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, {
      query: { fieldManager: 'strait-test', force: 'true', fieldValidation: 'Strict' },
      body: crd,
      contentType: 'application/apply-patch+yaml',
    });
  }
  const established = async () => (await crdConditions(rest)).filter((c) => c.Established === 'True').length >= customResourceDefinitions().length;
  await eventually('every CRD established', established);
}
