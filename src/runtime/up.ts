// `strait up` and `strait down`: starting and stopping every cluster's control-plane process.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { AdminClient } from '../control/admin-client.js';
import { clusterDir, ensureClusters, HomeError, isAlive, paths, readMesh, readPid, removeIfExists, withHomeLock, type ClusterEntry } from './home.js';
import { STRAIT_CLI } from './launch.js';
import { killRecordedProcesses } from './pods.js';
import { checkBringYourOwn, ensureLocalPki, installIssuers, type BringYourOwnPki, type UserIssuer } from './pki.js';
import { advertisedGatewayAddress, applySettings, type SettingFlags } from './settings.js';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

export interface ClusterState {
  name: string;
  /** `started` now, or was already `running`. */
  state: 'started' | 'running';
  pid: number;
  /** Where other clusters reach its gateway, as its running control plane advertises it. */
  gatewayAddress: string;
  /** Where its gateway listens: the advertised address, or its own when the advertised one is not this machine's. */
  gatewayListen: string;
  region?: string;
  /** A setting stored in mesh.json that the running control plane does not use yet. */
  pending?: string;
}

export function adminClient(home: string, cluster: string): AdminClient {
  return new AdminClient(paths.socket(home, cluster), cluster);
}

export interface UpOptions {
  trustDomain?: string;
  /** The user's own PKI material; checked whole before anything is written. */
  pki?: BringYourOwnPki;
  /** Gateway addresses, regions, sameness: checked with the rest before mesh.json is written. */
  settings?: SettingFlags;
  progress?: (msg: string) => void;
}

/** Starts (or finds running) the control plane of every named cluster and of every known one. */
export async function up(home: string, names: string[], opts: UpOptions = {}): Promise<ClusterState[]> {
  const progress = opts.progress ?? (() => {});
  return withHomeLock(home, 'strait up', async () => {
    const targets = names.length > 0 ? names : readMesh(home).clusters.map((c) => c.name);
    const issuers = opts.pki ? await checkBringYourOwn(opts.pki, targets) : new Map<string, UserIssuer>();
    const mesh = ensureClusters(home, names, opts.trustDomain, (m) => applySettings(m, names, opts.settings ?? {}));
    installIssuers(home, issuers);
    progress('preparing the mesh PKI');
    await ensureLocalPki(home, mesh.trustDomain, mesh.clusters.map((c) => c.name));
    return Promise.all(mesh.clusters.map((c) => startCluster(home, c, progress)));
  });
}

async function startCluster(home: string, c: ClusterEntry, progress: (msg: string) => void): Promise<ClusterState> {
  const client = adminClient(home, c.name);
  const pid = readPid(paths.pid(home, c.name));
  if (pid !== undefined && isAlive(pid)) {
    const health = await client.health().catch(() => undefined);
    if (health) return clusterState(client, c, 'running', health.pid);
  }
  progress(`starting control plane of ${c.name}`);
  const logFd = openSync(paths.log(home, c.name), 'a');
  const child = spawn(process.execPath, [STRAIT_CLI, 'control-plane', '--cluster', c.name], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, STRAIT_HOME: home },
    cwd: clusterDir(home, c.name),
  });
  closeSync(logFd);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== undefined) break;
    const health = await client.health(1000).catch(() => undefined);
    if (health?.ready) return clusterState(client, c, 'started', health.pid);
    await sleep(50);
  }
  if (exited === undefined) child.kill('SIGKILL');
  throw new HomeError(
    `the control plane of ${c.name} ${exited === undefined ? `was not ready within ${READY_TIMEOUT_MS / 1000} s` : `exited (code ${exited})`}; its log (${paths.log(home, c.name)}) ends with:\n${logTail(paths.log(home, c.name))}`,
  );
}

async function clusterState(client: AdminClient, c: ClusterEntry, state: ClusterState['state'], pid: number): Promise<ClusterState> {
  const [info, gateway] = await Promise.all([client.clusterInfo(), client.gateway()]);
  const stored = advertisedGatewayAddress(c);
  return {
    name: c.name,
    state,
    pid,
    gatewayAddress: info.gatewayAddress,
    gatewayListen: gateway.address,
    ...(c.region !== undefined ? { region: c.region } : {}),
    ...(stored !== info.gatewayAddress
      ? { pending: `${c.name} keeps its gateway address ${info.gatewayAddress} until it restarts (strait down, then strait up); links to it need making again (strait link) to use ${stored}` }
      : {}),
  };
}

/** Stops every cluster and its pods; harmless when nothing runs. Returns the clusters it stopped. */
export async function down(home: string, progress: (msg: string) => void = () => {}): Promise<string[]> {
  if (!existsSync(paths.mesh(home))) return [];
  return withHomeLock(home, 'strait down', async () => {
    const { clusters } = readMesh(home);
    const stopped = await Promise.all(clusters.map((c) => stopCluster(home, c.name, progress)));
    return clusters.filter((_, i) => stopped[i]).map((c) => c.name);
  });
}

async function stopCluster(home: string, name: string, progress: (msg: string) => void): Promise<boolean> {
  const pidFile = paths.pid(home, name);
  const pid = readPid(pidFile);
  let wasRunning = false;
  if (pid !== undefined && isAlive(pid)) {
    wasRunning = true;
    progress(`stopping ${name}`);
    await adminClient(home, name).shutdown(true).catch(() => process.kill(pid, 'SIGTERM'));
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(pid) && Date.now() < deadline) await sleep(50);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  // Pods of a control plane that died on its own are still ours to stop.
  if ((await killRecordedProcesses(clusterDir(home, name))) > 0) wasRunning = true;
  removeIfExists(pidFile);
  removeIfExists(paths.socket(home, name));
  return wasRunning;
}

function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
