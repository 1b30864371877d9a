// Address blocks are machine-wide: two state directories on one machine must not run clusters in the
// same 127.x block. A running control plane claims its block in a file under the temp directory.
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterAddresses, MAX_CLUSTER_INDEX } from './addresses.js';
import { HomeError, isAlive } from './home.js';

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

/** The claim on `index` held by a live control plane of another state directory, if any. */
function foreignClaim(index: number, home: string): Claim | undefined {
  const claim = readClaim(index);
  return claim && claim.home !== home && isAlive(claim.pid) ? claim : undefined;
}

/** The lowest index not taken by `taken` nor by a running cluster of another state directory. */
export function freeBlockIndex(home: string, taken: ReadonlySet<number>): number {
  for (let i = 0; i <= MAX_CLUSTER_INDEX; i++) if (!taken.has(i) && !foreignClaim(i, home)) return i;
  throw new HomeError(`no free address block: every 127.x block from ${clusterAddresses(0).cidr} up is in use`);
}

/** Claims the block for a starting control plane; fails if another state directory runs there. */
export function claimBlock(index: number, home: string, cluster: string): void {
  const other = foreignClaim(index, home);
  if (other) {
    throw new HomeError(
      `cluster ${cluster} cannot use ${clusterAddresses(index).cidr}: cluster ${other.cluster} of ${other.home} (process ${other.pid}) runs there; stop it with: STRAIT_HOME=${other.home} strait down`,
    );
  }
  mkdirSync(CLAIMS, { recursive: true });
  writeFileSync(claimFile(index), JSON.stringify({ home, cluster, pid: process.pid } satisfies Claim));
}

export function releaseBlock(index: number): void {
  if (readClaim(index)?.pid !== process.pid) return;
  try {
    unlinkSync(claimFile(index));
  } catch {
    // already gone
  }
}

/** Indexes claimed by live control planes (for tests and diagnostics). */
export function claimedBlocks(): number[] {
  try {
    return readdirSync(CLAIMS)
      .map((f) => Number.parseInt(f, 10))
      .filter((i) => Number.isInteger(i) && readClaim(i) !== undefined && isAlive(readClaim(i)!.pid));
  } catch {
    return [];
  }
}
