// Three clusters linked every way, each with the same 1,000 global services of 3 endpoints: every
// cluster comes to hold the other two's member slices and 1,000 ServiceImports naming all three;
// an endpoint change in one reaches the others' stores quickly; and once settled, nothing is
// written again. The times are printed.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/types.js';
import type { EndpointSlice } from '../../src/api/kinds/endpointslice.js';
import { PROXY_CONTAINER } from '../../src/api/mesh.js';
import { link, startClusters, until, type TestCluster } from './links-harness.js';

const SERVICES = 1_000;
const PODS = 3;
const NAMES = ['cluster1', 'cluster2', 'cluster3'];

let running: TestCluster[] = [];
after(async () => {
  await Promise.all(running.map((c) => c.close()));
});

const podIp = (cluster: number, i: number, p: number) => `127.${30 + cluster}.${1 + Math.floor((i * PODS + p) / 250)}.${1 + ((i * PODS + p) % 250)}`;
const ready = (ip: string, isReady = true) => ({ phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: isReady ? 'True' : 'False' }] });

async function globalServices(cluster: TestCluster, index: number): Promise<void> {
  const objects: Resource[] = [];
  for (let i = 0; i < SERVICES; i++) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `svc-${i}`, namespace: 'sample', annotations: { 'service.cilium.io/global': 'true' } },
      spec: { type: 'ClusterIP', selector: { app: `svc-${i}` }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    });
    for (let p = 0; p < PODS; p++) {
      objects.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `svc-${i}-${p}`, namespace: 'sample', labels: { app: `svc-${i}` } },
        spec: { containers: [{ name: 'app', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }, { name: PROXY_CONTAINER, image: 'strait/proxy' }] },
      });
    }
  }
  for (let start = 0; start < objects.length; start += 1000) await cluster.store.apply(objects.slice(start, start + 1000));
  const statuses: Promise<unknown>[] = [];
  for (let i = 0; i < SERVICES; i++) for (let p = 0; p < PODS; p++) statuses.push(cluster.store.updateStatus({ kind: 'Pod', namespace: 'sample', name: `svc-${i}-${p}` }, ready(podIp(index, i, p))));
  await Promise.all(statuses);
}

const percentile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))]!;

it(`3 clusters × ${SERVICES.toLocaleString('en')} global services × ${PODS} endpoints`, { timeout: 240_000 }, async () => {
  running = await startClusters(NAMES);
  await Promise.all(running.map((c, i) => globalServices(c, i)));
  const started = Date.now();
  for (const target of running) for (const consumer of running) if (target !== consumer) await link(target, consumer);

  for (const cluster of running) {
    await until(
      `${cluster.name}: ${2 * SERVICES} member slices and ${SERVICES} ServiceImports of 3 clusters`,
      async () => {
        const slices = (await cluster.store.list('EndpointSlice', { labelSelector: 'multicluster.kubernetes.io/service-name' })).items as EndpointSlice[];
        if (slices.length < 2 * SERVICES || slices.some((s) => s.endpoints.length !== PODS)) return false;
        const imports = (await cluster.store.list('ServiceImport')).items;
        return imports.length === SERVICES && imports.every((o) => (o.status as { clusters?: unknown[] } | undefined)?.clusters?.length === 3);
      },
      180_000,
    );
  }
  const syncMs = Date.now() - started;
  console.log(`# linked 6 ways and synced: every cluster holds ${2 * SERVICES} member slices and ${SERVICES} ServiceImports in ${(syncMs / 1000).toFixed(1)} s`);

  // Settled: no slice or ServiceImport is written again (a Link's status still records each probe).
  await Promise.all(running.map((c) => c.multicluster.clusterset.settled()));
  const latestWrite = (c: TestCluster) =>
    Promise.all((['ServiceImport', 'EndpointSlice'] as const).map(async (kind) => Math.max(...(await c.store.list(kind)).items.map((o) => Number(o.metadata.resourceVersion)))));
  const versions = await Promise.all(running.map(latestWrite));
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await Promise.all(running.map(latestWrite)), versions, 'nothing written once settled');

  // An endpoint of cluster1 turns not ready, and back: how long until cluster2 and cluster3 hold it.
  const [c1, c2, c3] = running as [TestCluster, TestCluster, TestCluster];
  const delays: number[] = [];
  for (let n = 0; n < 20; n++) {
    const i = n * 37;
    const isReady = n % 2 === 1;
    const ip = podIp(0, i, 0);
    const changed = Date.now();
    await c1.store.updateStatus({ kind: 'Pod', namespace: 'sample', name: `svc-${i}-0` }, ready(ip, isReady));
    await Promise.all(
      [c2, c3].map(async (c) => {
        await until(`svc-${i} in ${c.name}`, async () => {
          const slices = (await c.store.list('EndpointSlice', { namespace: 'sample', labelSelector: `kubernetes.io/service-name=svc-${i},strait.dev/remote-cluster=cluster1` })).items as EndpointSlice[];
          return slices.some((s) => s.endpoints.some((e) => e.addresses[0] === ip && (e.conditions?.ready ?? true) === isReady));
        });
        delays.push(Date.now() - changed);
      }),
    );
  }
  console.log(`# an endpoint change in cluster1 in the other clusters' stores: p50 ${percentile(delays, 0.5)} ms, p99 ${percentile(delays, 0.99)} ms`);
  assert.ok(percentile(delays, 0.99) < 2000, `p99 ${percentile(delays, 0.99)} ms`);
});
