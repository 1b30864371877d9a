// What every command needs: the state directory, the cluster it acts on, and how failures exit.
import type { Command } from 'commander';
import { AdminClient } from '../control/admin-client.js';
import { paths, pickCluster, straitHome, type ClusterEntry } from '../runtime/home.js';
import type { KubeCluster } from './kube-cluster.js';

/** A failure the user can act on: printed without a stack, exit 1 (or 2 for usage). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

export interface GlobalOptions {
  cluster?: string;
  namespace?: string;
}

/** What commands that act on either platform ask of a cluster: a local one's admin API, or a Kubernetes cluster. */
export type ClusterClient = Pick<AdminClient, 'cluster' | 'list' | 'get' | 'apply' | 'delete' | 'stats' | 'services' | 'logs'>;

/** The cluster a command acts on: a local cluster, or with --context a Kubernetes one. */
export interface TargetContext {
  /** The cluster's name, or the kube context. */
  name: string;
  client: ClusterClient;
  /** `-n`, or "default". */
  namespace: string;
  namespaceGiven: boolean;
  /** The state directory of a local cluster. */
  home?: string;
  /** Set with --context. */
  kube?: KubeCluster;
}

/** The flag that names the context's cluster again, for the next command a message suggests. */
export function targetFlag(ctx: TargetContext): string {
  return ctx.kube ? `--context ${ctx.name}` : `--cluster ${ctx.name}`;
}

/** A cluster of the local runtime (commands that act only there). */
export interface ClusterContext extends TargetContext {
  home: string;
  cluster: ClusterEntry;
  client: AdminClient;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function clusterContext(cmd: Command): ClusterContext {
  const g = globals(cmd);
  const home = straitHome();
  const cluster = pickCluster(home, g.cluster);
  return {
    name: cluster.name,
    home,
    cluster,
    client: new AdminClient(paths.socket(home, cluster.name), cluster.name),
    namespace: g.namespace ?? 'default',
    namespaceGiven: g.namespace !== undefined,
  };
}

/** The cluster of --context (or --kubeconfig) on Kubernetes, else the local cluster of --cluster. */
export async function targetContext(cmd: Command): Promise<TargetContext> {
  const g = cmd.optsWithGlobals<GlobalOptions & { context?: string; kubeconfig?: string; requestTimeout?: string }>();
  if (g.context === undefined && g.kubeconfig === undefined) return clusterContext(cmd);
  if (g.cluster !== undefined) throw new UsageError('--cluster names a local cluster and --context a Kubernetes one: give one of them');
  const { KubeCluster } = await import('./kube-cluster.js');
  const kube = await KubeCluster.connect(g);
  return { name: kube.cluster, client: kube, kube, namespace: g.namespace ?? 'default', namespaceGiven: g.namespace !== undefined };
}
