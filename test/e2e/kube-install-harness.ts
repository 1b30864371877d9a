// A real Kubernetes control plane for end-to-end tests, started with scripts/kube-env.mjs, and the
// built kubectl to look at it. Tests skip, saying why, when the binaries are not built.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunResult } from '../support/cli.js';

const KUBE_ENV = fileURLToPath(new URL('../../scripts/kube-env.mjs', import.meta.url));
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'strait', 'kube');

/** Why the Kubernetes tests cannot run here, or undefined when they can. */
export function kubeSkipReason(): string | undefined {
  if (!existsSync(KUBE_ENV)) return `${KUBE_ENV} is missing`;
  const built = existsSync(CACHE) && readdirSync(CACHE).some((v) => existsSync(join(CACHE, v, 'bin', 'kube-apiserver')));
  return built ? undefined : `no Kubernetes binaries in ${CACHE}: build them with node scripts/kube-env.mjs build`;
}

export class KubeEnv {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly kubectlBin: string;

  private constructor(
    readonly context: string,
    dir: string,
  ) {
    this.dir = dir;
    this.kubeconfig = join(dir, 'kubeconfig');
    this.kubectlBin = join(dir, 'bin', 'kubectl');
  }

  /** Starts one cluster named `context`; stop it with down(). */
  static up(context: string, options: { node?: boolean } = {}): KubeEnv {
    const env = new KubeEnv(context, mkdtempSync(join(tmpdir(), `strait-kube-${context}-`)));
    const args = [KUBE_ENV, 'up', '--clusters', context, '--dir', env.dir, ...(options.node === false ? ['--no-node'] : [])];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) {
      env.down();
      throw new Error(`kube-env up failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    return env;
  }

  down(): void {
    spawnSync(process.execPath, [KUBE_ENV, 'down', '--dir', this.dir], { encoding: 'utf8', timeout: 120_000 });
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** kubectl with this cluster's kubeconfig and context; never throws on a non-zero exit. */
  kubectl(args: string[], options: { input?: string } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.kubectlBin, ['--kubeconfig', this.kubeconfig, '--context', this.context, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(options.input ?? '');
    });
  }

  async kubectlOk(args: string[], options: { input?: string } = {}): Promise<string> {
    const r = await this.kubectl(args, options);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /**
   * Every object of every listable kind, as `resource namespace/name`: what the cluster holds. Kinds
   * whose objects come and go by themselves (events, the node's lease renewals keep their names) are left out.
   */
  async inventory(): Promise<Set<string>> {
    const kinds = (await this.kubectlOk(['api-resources', '--verbs=list', '-o', 'name'])).split('\n').filter((k) => k !== '' && !/^events(\.|$)/.test(k));
    const out = new Set<string>();
    const lists = await Promise.all(kinds.map((kind) => this.kubectlOk(['get', kind, '-A', '-o', 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\\n"}{end}']).then((text) => ({ kind, text }))));
    for (const { kind, text } of lists) for (const line of text.split('\n')) if (line !== '') out.add(`${kind} ${line}`);
    return out;
  }
}
