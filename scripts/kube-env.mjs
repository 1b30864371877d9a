#!/usr/bin/env node
// The Kubernetes test environment: real Kubernetes control planes on loopback, one per cluster, built
// from Kubernetes' own Go modules, with Strait's node agent as each cluster's one node.
//
//   node scripts/kube-env.mjs up --clusters a,b[,c] --dir DIR [--no-node]
//   node scripts/kube-env.mjs down --dir DIR
//   node scripts/kube-env.mjs build
//
// `up` builds what the cache lacks, starts every cluster, and writes DIR/kubeconfig (one context per
// cluster, named after it) and DIR/bin/kubectl. `down` stops everything `up` started.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { binPath, EnvError, ensureBuilt } from './kube-env/build.mjs';
import { clusterLayout, startCluster, stopCluster } from './kube-env/cluster.mjs';
import { kubeconfig } from './kube-env/pki.mjs';

const USAGE = 'usage: node scripts/kube-env.mjs up --clusters a,b[,c] --dir DIR [--no-node] | down --dir DIR | build';
const dist = (path) => import(new URL(`../dist/src/${path}`, import.meta.url).href);
const statePath = (dir) => join(dir, 'kube-env.json');

function readState(dir) {
  try {
    return JSON.parse(readFileSync(statePath(dir), 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw new EnvError(`kube-env: ${statePath(dir)} is unreadable (${err.message}); stop its processes by hand, then remove ${dir}`);
  }
}

function writeState(dir, state) {
  writeFileSync(statePath(dir) + '.tmp', JSON.stringify(state, null, 2) + '\n');
  renameSync(statePath(dir) + '.tmp', statePath(dir));
}

async function up(dir, names, node) {
  if (!existsSync(new URL('../dist/src/cli/main.js', import.meta.url))) throw new EnvError('kube-env: the project is not built; run `npm ci` first');
  const { isAlive } = await dist('runtime/processes.js');
  const previous = readState(dir);
  if (previous?.clusters.some((c) => c.processes.some(isAlive))) {
    throw new EnvError(`kube-env: ${dir} already runs ${previous.clusters.map((c) => c.name).join(', ')}; run \`node scripts/kube-env.mjs down --dir ${dir}\` first`);
  }
  await ensureBuilt();
  mkdirSync(join(dir, 'bin'), { recursive: true });
  rmSync(join(dir, 'bin', 'kubectl'), { force: true });
  symlinkSync(binPath('kubectl'), join(dir, 'bin', 'kubectl'));

  const { reserveBlock, claimBlock } = await dist('runtime/blocks.js');
  const { blockPrefix } = await dist('runtime/addresses.js');
  const state = { clusters: [] };
  const layouts = [];
  try {
    for (const name of names) {
      const home = join(dir, name);
      const index = previous?.clusters.find((c) => c.name === name)?.index ?? reserveBlock(home, name, new Set());
      claimBlock(index, home, name);
      const layout = clusterLayout(dir, name, index, blockPrefix(index));
      layouts.push(layout);
      state.clusters.push({ name, index, prefix: layout.prefix, processes: [] });
    }
    writeState(dir, state);
    // Every cluster finishes starting (or fails and stops itself) before any failure is handled.
    const results = await Promise.allSettled(
      layouts.map(async (layout, i) => {
        const started = Date.now();
        // The block is held while the cluster's store runs.
        const processes = await startCluster(layout, { node, onStore: (pid) => claimBlock(layout.index, join(dir, layout.name), layout.name, pid) });
        state.clusters[i].processes = processes;
        writeState(dir, state);
        process.stderr.write(`✓ ${layout.name}: https://${layout.apiAddress}:${layout.apiPort} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      }),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    for (const [i, layout] of layouts.entries()) await stopCluster(layout, state.clusters[i]?.processes ?? []);
    throw err;
  }
  const entries = layouts.map((l) => ({ name: l.name, apiAddress: l.apiAddress, apiPort: l.apiPort, pki: join(l.dir, 'pki'), user: 'admin' }));
  writeFileSync(join(dir, 'kubeconfig'), kubeconfig(entries), { mode: 0o600 });
  console.log(`KUBECONFIG=${join(dir, 'kubeconfig')} ${join(dir, 'bin', 'kubectl')} --context ${names[0]} get nodes`);
}

async function down(dir) {
  const state = readState(dir);
  if (!state) {
    console.error(`kube-env: nothing runs from ${dir}`);
    return;
  }
  const { blockPrefix } = await dist('runtime/addresses.js');
  await Promise.all(state.clusters.map((c) => stopCluster(clusterLayout(dir, c.name, c.index, blockPrefix(c.index)), c.processes)));
  for (const c of state.clusters) c.processes = [];
  writeState(dir, state);
  console.error(`✓ stopped ${state.clusters.map((c) => c.name).join(', ')}`);
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { clusters: { type: 'string' }, dir: { type: 'string' }, 'no-node': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command] = positionals;
  if (values.help) return console.log(USAGE);
  if (command === 'build') {
    console.log(await ensureBuilt());
    return;
  }
  if (!values.dir || (command !== 'up' && command !== 'down')) throw new EnvError(USAGE);
  const dir = resolve(values.dir);
  if (command === 'down') return down(dir);
  const names = (values.clusters ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.find((n) => !/^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/.test(n));
  if (names.length === 0) throw new EnvError(`kube-env: --clusters names at least one cluster (e.g. --clusters cluster1,cluster2)\n${USAGE}`);
  if (bad !== undefined) throw new EnvError(`kube-env: --clusters: "${bad}" is not a cluster name (lower-case letters, digits and '-', starting with a letter)`);
  if (new Set(names).size !== names.length) throw new EnvError('kube-env: --clusters names a cluster twice');
  await up(dir, names, !values['no-node']);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof EnvError ? err.message : err.stack ?? String(err));
    process.exit(err instanceof EnvError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1);
  },
);
