// mesh.json, the state directory's list of clusters, as home.ts writes it and blocks.ts reads it
// (another state directory's too, to tell a stale block claim from a live one).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../api/errors.js';
import { DEFAULT_TRUST_DOMAIN } from '../identity/spiffe.js';

export interface ClusterEntry {
  name: string;
  /** Picks the cluster's loopback block (see addresses.ts); free on this machine when created. */
  index: number;
  createdAt: string;
  /** `host:port` other clusters reach this cluster's gateway at (see settings.ts); unset: its own gateway address. */
  gatewayAddress?: string;
  /** The region the cluster runs in, a DNS-1123 label. */
  region?: string;
}

export interface MeshFile {
  /** The SPIFFE trust domain of every identity in the mesh; fixed when the first cluster is made. */
  trustDomain: string;
  clusters: ClusterEntry[];
  /** Namespace sameness: Services of the same name and namespace in linked clusters are one service. */
  sameness?: boolean;
}

export class HomeError extends UserError {}

export function meshPath(home: string): string {
  return join(home, 'mesh.json');
}

export function readMesh(home: string): MeshFile {
  try {
    const mesh = JSON.parse(readFileSync(meshPath(home), 'utf8')) as Partial<MeshFile>;
    return {
      trustDomain: mesh.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      clusters: mesh.clusters ?? [],
      ...(typeof mesh.sameness === 'boolean' ? { sameness: mesh.sameness } : {}),
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { trustDomain: DEFAULT_TRUST_DOMAIN, clusters: [] };
    throw new HomeError(`${meshPath(home)} is unreadable: ${(err as Error).message}`);
  }
}

/** Whether a process (of a pid file, a lock or a block claim) still runs. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
