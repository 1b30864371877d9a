// Builds the Kubernetes components the test environment runs — kube-apiserver,
// kube-controller-manager, kube-scheduler and kubectl from the Go module k8s.io/kubernetes (through
// the wrapper module in hack/kube), and kine (sqlite) as their store — into a cache outside the
// repository, keyed by version. A warm cache is used as it is.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HACK = fileURLToPath(new URL('../../hack/kube/', import.meta.url));
export const KINE_VERSION = 'v0.17.5';
export const KUBE_COMMANDS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];
export const BINARIES = [...KUBE_COMMANDS, 'kine'];
/** What a cold build takes: the module downloads (~1.5 GB) and Go's build cache (~4 GB). */
const COLD_BUILD_BYTES = 6 * 1024 ** 3;

/** The Kubernetes release hack/kube/go.mod pins. */
export function kubeVersion() {
  const mod = readFileSync(join(HACK, 'go.mod'), 'utf8');
  const m = /^\s*(?:require\s+)?k8s\.io\/kubernetes (v[0-9.]+)/m.exec(mod);
  if (!m) throw new Error(`${join(HACK, 'go.mod')} does not require k8s.io/kubernetes`);
  return m[1];
}

export function cacheRoot() {
  return process.env.STRAIT_KUBE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'strait', 'kube');
}

/** The cache directory of this pinned set of versions; its `bin/` holds the binaries. */
export function cacheDir() {
  return join(cacheRoot(), `kubernetes-${kubeVersion()}-kine-${KINE_VERSION}`);
}

export function binPath(name) {
  return join(cacheDir(), 'bin', name);
}

export function isBuilt() {
  return BINARIES.every((b) => existsSync(binPath(b)));
}

export class EnvError extends Error {}

function goVersion() {
  const result = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout.trim();
}

/** The free bytes where the build writes: the cache, Go's module cache and its build cache. */
function checkRoom() {
  const env = spawnSync('go', ['env', 'GOMODCACHE', 'GOCACHE'], { encoding: 'utf8' }).stdout.trim().split('\n');
  for (const dir of [cacheRoot(), ...env]) {
    let probe = dir;
    while (!existsSync(probe)) probe = dirname(probe);
    const { bavail, bsize } = statfsSync(probe);
    const free = bavail * bsize;
    if (free < COLD_BUILD_BYTES) {
      throw new EnvError(
        `kube-env: building Kubernetes needs about ${(COLD_BUILD_BYTES / 1024 ** 3).toFixed(0)} GB free for ${dir}, and ${probe} has ${(free / 1024 ** 3).toFixed(1)} GB; free some space (or point STRAIT_KUBE_CACHE, GOMODCACHE and GOCACHE elsewhere) and run again`,
      );
    }
  }
}

/** One line that says what is building and for how long: rewritten in place on a terminal, every 30 s elsewhere. */
function progress(what) {
  const started = Date.now();
  const tty = process.stderr.isTTY;
  const elapsed = () => {
    const s = Math.round((Date.now() - started) / 1000);
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  };
  const show = () => (tty ? process.stderr.write(`\r\x1b[2K… ${what} (${elapsed()})`) : process.stderr.write(`… ${what} (${elapsed()})\n`));
  show();
  const timer = setInterval(show, tty ? 1000 : 30_000);
  return {
    done(ok) {
      clearInterval(timer);
      process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${ok ? '✓' : '×'} ${what} (${elapsed()})\n`);
    },
  };
}

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk) => {
      output = (output + chunk).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new EnvError(`kube-env: ${cmd} ${args.join(' ')} failed (exit ${code}):\n${output}`))));
  });
}

/** Holds the cache's build lock while `fn` runs, so that two `up` at once build once. */
async function withLock(fn) {
  mkdirSync(cacheRoot(), { recursive: true });
  const lock = join(cacheRoot(), '.build.lock');
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lock, 'utf8'));
      let alive = false;
      try {
        process.kill(holder, 0);
        alive = true;
      } catch {
        // the process that held it is gone
      }
      if (!alive) {
        rmSync(lock, { force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    unlinkSync(lock);
  }
}

/** Builds whatever of the pinned binaries the cache lacks; returns the cache's bin directory. */
export async function ensureBuilt() {
  if (isBuilt()) return join(cacheDir(), 'bin');
  const go = goVersion();
  if (!go) {
    throw new EnvError(
      'kube-env: Go is not installed, and the test environment builds Kubernetes from its Go modules. Install Go 1.26 or newer (`go version` must work), then run again.',
    );
  }
  return withLock(async () => {
    if (isBuilt()) return join(cacheDir(), 'bin');
    checkRoom();
    const version = kubeVersion();
    const staging = join(cacheDir(), `.bin-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const env = { ...process.env, CGO_ENABLED: '1', GOFLAGS: '-buildvcs=false' };
    const [, minor] = /^v1\.(\d+)\./.exec(version) ?? [];
    const ldflags = [
      '-s -w',
      `-X k8s.io/component-base/version.gitVersion=${version}`,
      '-X k8s.io/component-base/version.gitMajor=1',
      `-X k8s.io/component-base/version.gitMinor=${minor}`,
      '-X k8s.io/component-base/version.gitTreeState=clean',
    ].join(' ');
    const kube = progress(`building Kubernetes ${version} (${KUBE_COMMANDS.join(', ')}) with ${go.replace(/^go version /, '')}; a cold build takes 5-10 min on 2 cores, module downloads included`);
    try {
      await run('go', ['build', '-trimpath', '-ldflags', ldflags, '-o', staging + '/', ...KUBE_COMMANDS.map((c) => `k8s.io/kubernetes/cmd/${c}`)], { cwd: HACK, env });
      kube.done(true);
    } catch (err) {
      kube.done(false);
      throw err;
    }
    const kine = progress(`building kine ${KINE_VERSION} (sqlite)`);
    try {
      await run('go', ['install', `github.com/k3s-io/kine@${KINE_VERSION}`], { env: { ...env, GOBIN: staging } });
      kine.done(true);
    } catch (err) {
      kine.done(false);
      throw err;
    }
    rmSync(join(cacheDir(), 'bin'), { recursive: true, force: true });
    renameSync(staging, join(cacheDir(), 'bin'));
    return join(cacheDir(), 'bin');
  });
}
