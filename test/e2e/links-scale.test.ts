// A remote that exports 10,000 services: every one is mirrored (with its EndpointSlice) through
// the gateway, in batched store writes; the time it takes and the memory it costs are printed, and
// held to a bound; a single change afterwards still costs one small write, not a full pass.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Link } from '../../src/api/kinds/strait.js';
import type { Resource } from '../../src/api/types.js';
import { PROXY_CONTAINER } from '../../src/api/mesh.js';
import { link, startClusters, until, type TestCluster } from './links-harness.js';

const SERVICES = 10_000;
/** Heap growth allowed for the whole link (the exporter's index, the stream, the controller, and the 20,000 objects it writes). */
const MAX_HEAP_GROWTH_MB = 600;

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;
const heapMb = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

let running: TestCluster[] = [];
after(async () => {
  await Promise.all(running.map((c) => c.close()));
});

async function exportMany(cluster: TestCluster, count: number): Promise<void> {
  const batch = 1000;
  for (let start = 0; start < count; start += batch) {
    const objects: Resource[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      objects.push(
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: `svc-${i}`, namespace: 'sample', labels: { 'mirror.linkerd.io/exported': 'true' } },
          spec: { type: 'ClusterIP', selector: { app: `svc-${i}` }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
        },
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `svc-${i}-0`, namespace: 'sample', labels: { app: `svc-${i}` } },
          spec: { containers: [{ name: 'app', image: 'x' }, { name: PROXY_CONTAINER, image: 'strait/proxy' }] },
        },
      );
    }
    await cluster.store.apply(objects);
  }
  for (let i = 0; i < count; i++) {
    await cluster.store.updateStatus(
      { kind: 'Pod', namespace: 'sample', name: `svc-${i}-0` },
      { phase: 'Running', podIP: `127.20.${1 + Math.floor(i / 254)}.${1 + (i % 254)}`, conditions: [{ type: 'Ready', status: 'True' }] },
    );
  }
}

it(`a remote that exports ${SERVICES.toLocaleString('en')} services is mirrored whole, within memory bounds`, { timeout: 120_000 }, async () => {
  running = await startClusters(['cluster1', 'cluster2']);
  const [c1, c2] = running as [TestCluster, TestCluster];
  await exportMany(c1, SERVICES);

  const heapBefore = heapMb();
  const started = performance.now();
  await link(c1, c2);
  await until(
    'every service to be mirrored',
    async () => ((await c2.store.get({ kind: 'Link', namespace: 'strait-system', name: 'cluster1' })) as Link | undefined)?.status?.services === SERVICES,
    60_000,
  );
  await c2.multicluster.links.controller('cluster1')!.settled();
  const syncMs = performance.now() - started;
  const mirrors = (await c2.store.list('Service', { namespace: 'sample' })).items.length;
  const slices = (await c2.store.list('EndpointSlice', { namespace: 'sample' })).items.length;
  const heapGrowth = heapMb() - heapBefore;
  console.log(`# ${SERVICES} exported services: ${mirrors} mirrors and ${slices} EndpointSlices written in ${(syncMs / 1000).toFixed(1)} s`);
  console.log(`# heap growth for the link (both sides, stores included): ${heapGrowth.toFixed(0)} MB; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`);
  assert.equal(mirrors, SERVICES);
  assert.equal(slices, SERVICES);
  assert.ok(heapGrowth < MAX_HEAP_GROWTH_MB, `heap grew ${heapGrowth.toFixed(0)} MB`);

  // One change among 10,000 is one small update on the wire and one write here.
  const versionBefore = Number((await c2.store.list('Service')).resourceVersion);
  const changed = performance.now();
  await c1.store.apply([
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'svc-42', namespace: 'sample', labels: {} },
      spec: { type: 'ClusterIP', selector: { app: 'svc-42' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    },
  ]);
  await until('the unexported mirror to go', async () => !(await c2.store.get({ kind: 'Service', namespace: 'sample', name: 'svc-42-cluster1' })), 5000);
  console.log(`# one unexport among ${SERVICES}: mirror removed in ${(performance.now() - changed).toFixed(0)} ms`);
  await c2.multicluster.links.controller('cluster1')!.settled();
  const writes = Number((await c2.store.list('Service')).resourceVersion) - versionBefore;
  assert.ok(writes <= 4, `${writes} store changes for one unexport`);
});
