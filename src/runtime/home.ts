// The state directory (STRAIT_HOME, default ./.strait): which clusters exist, where each keeps its
// files, and the lock that keeps two `strait up`/`down` runs from interleaving.
import { mkdirSync, readFileSync, writeFileSync, renameSync, openSync, closeSync, unlinkSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDns1123Label } from '../api/names.js';
import { trustDomainProblem } from '../identity/spiffe.js';
import { reserveBlock } from './blocks.js';
import { HomeError, isAlive, meshPath, readMesh, type ClusterEntry, type MeshFile } from './mesh-file.js';

export { HomeError, isAlive, readMesh, type ClusterEntry, type MeshFile } from './mesh-file.js';

export function straitHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.STRAIT_HOME ?? '.strait');
}

export function clusterDir(home: string, cluster: string): string {
  return join(home, 'clusters', cluster);
}

export const paths = {
  mesh: meshPath,
  lock: (home: string) => join(home, 'lock'),
  store: (home: string, c: string) => join(clusterDir(home, c), 'store'),
  socket: (home: string, c: string) => join(clusterDir(home, c), 'control-plane.sock'),
  pid: (home: string, c: string) => join(clusterDir(home, c), 'control-plane.pid'),
  log: (home: string, c: string) => join(clusterDir(home, c), 'control-plane.log'),
};

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

function writeMesh(home: string, mesh: MeshFile): void {
  const tmp = paths.mesh(home) + '.tmp';
  writeFileSync(tmp, JSON.stringify(mesh, null, 2) + '\n');
  renameSync(tmp, paths.mesh(home));
}

/**
 * Adds the named clusters that do not exist yet; returns the mesh. `configure` may change the mesh
 * (new clusters included) before it is written, or throw to leave mesh.json as it was.
 */
export function ensureClusters(home: string, names: string[], trustDomain?: string, configure?: (mesh: MeshFile) => void): MeshFile {
  for (const name of names) {
    if (!isDns1123Label(name)) {
      throw new HomeError(`cluster name "${name}" is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)`);
    }
    const sock = paths.socket(home, name);
    if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) {
      throw new HomeError(`the state directory ${home} is too deep: ${sock} exceeds the ${MAX_SOCKET_PATH}-byte limit of a Unix socket path; set STRAIT_HOME to a shorter path`);
    }
  }
  const mesh = readMesh(home);
  const problem = trustDomain === undefined ? undefined : trustDomainProblem(trustDomain);
  if (problem) throw new HomeError(`--trust-domain ${trustDomain}: ${problem}`);
  if (trustDomain !== undefined && trustDomain !== mesh.trustDomain) {
    if (mesh.clusters.length > 0) {
      throw new HomeError(`the mesh in ${home} has trust domain ${mesh.trustDomain}; it cannot change to ${trustDomain} (use another STRAIT_HOME for another mesh)`);
    }
    mesh.trustDomain = trustDomain;
  }
  mkdirSync(home, { recursive: true });
  const taken = new Set(mesh.clusters.map((c) => c.index));
  for (const name of names) {
    if (mesh.clusters.some((c) => c.name === name)) continue;
    const index = reserveBlock(home, name, taken);
    taken.add(index);
    mesh.clusters.push({ name, index, createdAt: new Date().toISOString() });
  }
  configure?.(mesh);
  for (const c of mesh.clusters) mkdirSync(clusterDir(home, c.name), { recursive: true });
  writeMesh(home, mesh);
  return mesh;
}

/** The cluster a command means: `--cluster` if given (it must exist), else the first one. */
export function pickCluster(home: string, requested?: string): ClusterEntry {
  const { clusters } = readMesh(home);
  if (clusters.length === 0) {
    throw new HomeError(`no clusters in ${home}; start some with: strait up --clusters cluster1,cluster2`);
  }
  if (requested === undefined) return clusters[0]!;
  const found = clusters.find((c) => c.name === requested);
  if (!found) {
    throw new HomeError(
      `cluster "${requested}" does not exist; known clusters: ${clusters.map((c) => c.name).join(', ')} (create it with: strait up --clusters ${requested})`,
    );
  }
  return found;
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the state directory's lock for the duration of `fn`. A lock left by a dead process is
 * taken over; one held by a live process is an error naming it.
 */
export async function withHomeLock<T>(home: string, what: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(home, { recursive: true });
  const file = paths.lock(home);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeFileSync(fd, `${process.pid}\n${what}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockError(home, file, err);
      const holder = readPid(file);
      if (holder !== undefined && isAlive(holder) && holder !== process.pid) throw lockError(home, file, err);
      unlinkSync(file);
    }
  }
  try {
    return await fn();
  } finally {
    if (readPid(file) === process.pid) unlinkSync(file);
  }
}

function lockError(home: string, file: string, cause: unknown): HomeError {
  if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') return new HomeError(`cannot lock ${home}: ${(cause as Error).message}`);
  const holder = readPid(file);
  let what = '';
  try {
    what = readFileSync(file, 'utf8').split('\n')[1] ?? '';
  } catch {
    // the holder finished between our two reads
  }
  return new HomeError(
    `the state directory ${home} is locked by another running instance (process ${holder ?? '?'}${what ? `, ${what}` : ''}); wait for it to finish, or use another STRAIT_HOME`,
  );
}

export function removeIfExists(file: string): void {
  if (existsSync(file)) unlinkSync(file);
}
