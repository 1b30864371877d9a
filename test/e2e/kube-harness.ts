// A real Kubernetes control plane for a test (scripts/kube-env.mjs, without a node agent), and
// Strait's CRDs installed into it as `strait install` would.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { customResourceDefinitions } from '../../src/api/crds.js';
import type { KubeRest } from '../../src/store/kube-rest.js';

export interface KubeCluster {
  name: string;
  dir: string;
  kubeconfig: string;
  /** The cluster's loopback block, `127.X`. */
  prefix: string;
  down(): void;
}

function kubeEnv(dir: string, ...args: string[]): void {
  const run = spawnSync(process.execPath, ['scripts/kube-env.mjs', ...args, '--dir', dir], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(run.status, 0, `kube-env ${args[0]} failed:\n${run.stdout}\n${run.stderr}`);
}

export function startKubeCluster(name: string): KubeCluster {
  const dir = mkdtempSync(join(tmpdir(), `strait-${name}-`));
  kubeEnv(dir, 'up', '--clusters', name, '--no-node');
  const state = JSON.parse(readFileSync(join(dir, 'kube-env.json'), 'utf8')) as { clusters: { name: string; prefix: string }[] };
  return {
    name,
    dir,
    kubeconfig: join(dir, 'kubeconfig'),
    prefix: state.clusters.find((c) => c.name === name)!.prefix,
    down: () => {
      kubeEnv(dir, 'down');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function until(check: () => Promise<boolean> | boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Every CRD's name with its status conditions (`Established: 'True'`, …). */
export async function crdConditions(rest: KubeRest): Promise<Record<string, string>[]> {
  const list = await rest.request<{ items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
  return list.items.map((crd) => Object.fromEntries([['name', crd.metadata.name], ...(crd.status?.conditions ?? []).map((c) => [c.type, c.status])]) as Record<string, string>);
}

/** Applies every CRD Strait defines (server-side, strict field validation) and waits until each is served. */
export async function installCrds(rest: KubeRest): Promise<void> {
  for (const crd of customResourceDefinitions()) {
    await rest.request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, {
      query: { fieldManager: 'strait-test', force: 'true', fieldValidation: 'Strict' },
      body: crd,
      contentType: 'application/apply-patch+yaml',
    });
  }
  await until(async () => (await crdConditions(rest)).filter((c) => c.Established === 'True').length >= customResourceDefinitions().length, 'every CRD established');
}
