// What every command needs: the state directory, the cluster it acts on, and how failures exit.
import type { Command } from 'commander';
import { AdminClient } from '../control/admin-client.js';
import { paths, pickCluster, straitHome, type ClusterEntry } from '../runtime/home.js';

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

export interface ClusterContext {
  home: string;
  cluster: ClusterEntry;
  client: AdminClient;
  /** `-n`, or "default". */
  namespace: string;
  namespaceGiven: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function clusterContext(cmd: Command): ClusterContext {
  const g = globals(cmd);
  const home = straitHome();
  const cluster = pickCluster(home, g.cluster);
  return {
    home,
    cluster,
    client: new AdminClient(paths.socket(home, cluster.name), cluster.name),
    namespace: g.namespace ?? 'default',
    namespaceGiven: g.namespace !== undefined,
  };
}
