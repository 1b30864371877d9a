// Address blocks are machine-wide: two state directories on one machine must not run clusters in the
// same 127.x block. A block is claimed by a file under the temp directory, created atomically when
// a cluster is added, so two `strait up` started at once in different state directories never pick
// the same one. The claim holds while its process lives or its state directory still lists that
// cluster at that block: a stopped cluster keeps its addresses for its next `strait up`, and a
// state directory that is removed gives its blocks back.
import { linkSync, mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterAddresses, MAX_CLUSTER_INDEX } from './addresses.js';
import { HomeError, isAlive, readMesh } from './home.js';

interface Claim {
  home: string;
  cluster: string;
  pid: number;
}

const CLAIMS = join(tmpdir(), 'strait-address-blocks');

function claimFile(index: number): string {
  return join(CLAIMS, `${index}.json`);
}

function readClaim(index: number): Claim | undefined {
  try {
    return JSON.parse(readFileSync(claimFile(index), 'utf8')) as Claim;
  } catch {
    return undefined;
  }
}

/** Whether a claim on `index` still holds: its process lives, or its state directory lists the cluster there. */
function holds(claim: Claim, index: number): boolean {
  if (isAlive(claim.pid)) return true;
  try {
    return readMesh(claim.home).clusters.some((c) => c.name === claim.cluster && c.index === index);
  } catch {
    // An unreadable mesh.json may still be a live mesh's: its blocks stay taken.
    return true;
  }
}

/** A claim file written whole under a temporary name, so readers never see it half written. */
function writeTemporary(claim: Claim): string {
  mkdirSync(CLAIMS, { recursive: true });
  const tmp = join(CLAIMS, `.${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`);
  writeFileSync(tmp, JSON.stringify(claim));
  return tmp;
}

/** Creates the claim on `index` unless one holds it; a stale claim is replaced. */
function tryClaim(index: number, claim: Claim): boolean {
  const tmp = writeTemporary(claim);
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(tmp, claimFile(index));
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const other = readClaim(index);
      if (other === undefined || holds(other, index)) return false;
      try {
        unlinkSync(claimFile(index));
      } catch {
        // another process removed it first; the next link decides
      }
    }
    return false;
  } finally {
    unlinkSync(tmp);
  }
}

/** Claims the lowest block neither in `taken` (the state directory's own) nor held by anyone else, for a new cluster. */
export function reserveBlock(home: string, cluster: string, taken: ReadonlySet<number>): number {
  for (let i = 0; i <= MAX_CLUSTER_INDEX; i++) if (!taken.has(i) && tryClaim(i, { home, cluster, pid: process.pid })) return i;
  throw new HomeError(`no free address block: every 127.x block from ${clusterAddresses(0).cidr} up is in use`);
}

/**
 * Claims the block for a starting control plane (or, for the Kubernetes test environment, the
 * process `pid` that runs the cluster); fails if another state directory holds it.
 */
export function claimBlock(index: number, home: string, cluster: string, pid = process.pid): void {
  const other = readClaim(index);
  if (other && other.home !== home && holds(other, index)) {
    throw new HomeError(
      `cluster ${cluster} cannot use ${clusterAddresses(index).cidr}: cluster ${other.cluster} of ${other.home} holds it (${isAlive(other.pid) ? `process ${other.pid}` : 'stopped'}); free it with: STRAIT_HOME=${other.home} strait down, then remove ${other.home}`,
    );
  }
  renameSync(writeTemporary({ home, cluster, pid }), claimFile(index));
}

/** Indexes whose claims hold (for diagnostics and tests). */
export function claimedBlocks(): number[] {
  try {
    return readdirSync(CLAIMS)
      .map((f) => Number.parseInt(f, 10))
      .filter((i) => {
        const claim = Number.isInteger(i) ? readClaim(i) : undefined;
        return claim !== undefined && holds(claim, i);
      })
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}
