// Which Kubernetes cluster a command acts on, read as kubectl reads it: --kubeconfig, else the
// files in KUBECONFIG (merged), else ~/.kube/config; --context, else the current context. Any
// command that takes --cluster for the local runtime takes --context for Kubernetes through here.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseLifetime } from '../identity/duration.js';
import type { KubeApi } from '../control/kube-api.js';
import { CliError, UsageError } from './context.js';

export interface KubeFlags {
  context?: string;
  kubeconfig?: string;
  requestTimeout?: string;
}

/** Adds the flags to a command that can act on a Kubernetes cluster (commands taking --cluster take these too). */
export function withKubeOptions(command: Command): Command {
  return command
    .option('--context <name>', 'act on this kubeconfig context, a Kubernetes cluster (default for Kubernetes commands: the current context)')
    .option('--kubeconfig <file>', 'the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--request-timeout <duration>', 'how long to wait for the Kubernetes API server, e.g. 5s (default 10s)');
}

/** Whether the user pointed the command at Kubernetes rather than the local runtime. */
export function wantsKubernetes(cmd: Command): boolean {
  const g = cmd.optsWithGlobals<KubeFlags>();
  return g.context !== undefined || g.kubeconfig !== undefined;
}

function kubeconfigFiles(flag: string | undefined, env: NodeJS.ProcessEnv): { files: string[]; source: string } {
  if (flag !== undefined) return { files: [flag], source: `--kubeconfig ${flag}` };
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (list.length > 0) return { files: list, source: `KUBECONFIG=${env.KUBECONFIG}` };
  const file = join(env.HOME ?? homedir(), '.kube', 'config');
  return { files: [file], source: file };
}

/** The kubeconfig with `context` current; throws a CliError naming what to do when it cannot be. */
export async function loadKubeConfig(flags: KubeFlags, env: NodeJS.ProcessEnv = process.env): Promise<KubeConfig> {
  const { files, source } = kubeconfigFiles(flags.kubeconfig, env);
  const present = files.filter((f) => existsSync(f));
  if (present.length === 0) {
    throw new CliError(`no kubeconfig: ${files.join(', ')} ${files.length === 1 ? 'does' : 'do'} not exist`, 1, ['pass --kubeconfig FILE or set KUBECONFIG, as for kubectl']);
  }
  // client-node takes half a second to load: only commands that talk to Kubernetes pay for it.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const config = new KubeConfig();
  try {
    // Merged as kubectl merges KUBECONFIG: the first file that sets a name, or the current context, wins.
    for (const file of present) {
      const one = new KubeConfig();
      one.loadFromFile(file);
      for (const c of one.clusters) if (!config.clusters.some((x) => x.name === c.name)) config.addCluster(c);
      for (const u of one.users) if (!config.users.some((x) => x.name === u.name)) config.addUser(u);
      for (const c of one.contexts) if (!config.contexts.some((x) => x.name === c.name)) config.addContext(c);
      if (!config.getCurrentContext() && one.getCurrentContext()) config.setCurrentContext(one.getCurrentContext());
    }
  } catch (err) {
    throw new CliError(`${source}: not a usable kubeconfig: ${(err as Error).message}`);
  }
  const names = config.getContexts().map((c) => c.name);
  const wanted = flags.context ?? config.getCurrentContext();
  if (!wanted) throw new CliError(`${source} has no current context`, 1, [`name one with --context (${names.join(', ') || 'it has none'})`]);
  if (!config.getContextObject(wanted)) {
    throw new CliError(`context "${wanted}" is not in ${source}`, 1, [names.length ? `its contexts: ${names.join(', ')} (kubectl config get-contexts)` : 'it has no contexts', 'pass --context NAME, or --kubeconfig FILE for another file']);
  }
  config.setCurrentContext(wanted);
  if (!config.getCurrentCluster()) throw new CliError(`context "${wanted}" in ${source} names a cluster the kubeconfig does not define`);
  return config;
}

/** `--request-timeout`: seconds, or a duration such as 5s. */
export function requestTimeoutMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return /^\d+$/.test(text) ? Number(text) * 1000 : parseLifetime(text);
  } catch (err) {
    throw new UsageError(`--request-timeout ${text}: ${(err as Error).message}`);
  }
}

export interface KubeConnection {
  api: KubeApi;
  config: KubeConfig;
  context: string;
  /** The API server's version, e.g. v1.36.0. */
  version: string;
}

/** Connects to the cluster the command names and checks the API server answers; throws with its address when it does not. */
export async function kubeConnection(cmd: Command): Promise<KubeConnection> {
  const flags = cmd.optsWithGlobals<KubeFlags>();
  const config = await loadKubeConfig(flags);
  const { KubeApi } = await import('../control/kube-api.js');
  const timeout = requestTimeoutMs(flags.requestTimeout);
  const api = await KubeApi.connect(config, timeout === undefined ? {} : { timeoutMs: timeout });
  const version = await api.call<{ gitVersion?: string }>('GET', '/version');
  return { api, config, context: api.context, version: version.gitVersion ?? 'unknown' };
}
