// One service across two real clusters linked both ways (`strait up`, `strait connect`): what each
// cluster's store holds of the other's global services, clusterset exports and namespace sameness —
// member slices, ServiceImports and the conditions users read — and what is refused or kept home.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition } from '../../src/api/conditions.js';
import type { EndpointSlice } from '../../src/api/kinds/endpointslice.js';
import type { Resource } from '../../src/api/types.js';
import { AdminClient } from '../../src/control/admin-client.js';
import { paths } from '../../src/runtime/home.js';
import { Mesh, waitFor } from '../support/cli.js';

const service = (name: string, annotations: Record<string, string> = {}, port = 5000) => `
apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: sample
  annotations: ${JSON.stringify(annotations)}
spec:
  ports: [{name: http, port: ${port}, targetPort: 5000}]
  selector: {app: helloworld}
`;

/** The sample namespace and one meshed helloworld pod, which every Service below selects. */
const WORKLOAD = `
apiVersion: v1
kind: Namespace
metadata: {name: sample, annotations: {linkerd.io/inject: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: helloworld, namespace: sample}
spec:
  replicas: 1
  selector: {matchLabels: {app: helloworld}}
  template:
    metadata: {labels: {app: helloworld}}
    spec:
      containers:
      - {name: helloworld, image: docker.io/istio/examples-helloworld-v1, ports: [{containerPort: 5000}]}
`;

const GLOBAL = { 'service.cilium.io/global': 'true' };
const serviceExport = (name: string) => `
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {name: ${name}, namespace: sample}
`;

const conditionOf = (object: Resource | undefined, type: string) => ((object?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

describe('global services, clusterset exports and sameness between two linked clusters', () => {
  const mesh = new Mesh();
  let store1: AdminClient;
  let store2: AdminClient;

  const apply = (cluster: string, ...documents: string[]) => mesh.ok(['apply', '-f', '-', '--cluster', cluster], { input: documents.join('\n---\n') });
  const slicesOf = async (store: AdminClient, selector: string) => (await store.list('EndpointSlice', { namespace: 'sample', selector })).items as EndpointSlice[];
  const get = (store: AdminClient, kind: string, name: string) => store.get({ kind, namespace: 'sample', name });

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1,cluster2', '--region', 'cluster1=eu-west', '--region', 'cluster2=us-east']);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    store1 = new AdminClient(paths.socket(mesh.home, 'cluster1'), 'cluster1');
    store2 = new AdminClient(paths.socket(mesh.home, 'cluster2'), 'cluster2');
    // cluster1's `web` is made first, so it is the older definition of the two.
    await apply(
      'cluster1',
      WORKLOAD,
      service('reviews', GLOBAL),
      service('web', GLOBAL),
      service('ratings', { ...GLOBAL, 'service.cilium.io/shared': 'false' }),
      service('details', { ...GLOBAL, 'strait.dev/export-to': 'cluster2' }),
      service('hidden', { ...GLOBAL, 'strait.dev/export-to': 'cluster3' }),
      service('db'),
      serviceExport('db'),
      service('plain'),
    );
    await apply('cluster2', WORKLOAD, service('reviews', GLOBAL), service('web', GLOBAL, 5001), service('ratings', GLOBAL), service('plain'), serviceExport('nothing'));
  });

  after(() => mesh.destroy());

  it('each side holds the other’s global member slices, with its pod, labels and region, and a global ServiceImport', async () => {
    for (const [store, remote, region] of [
      [store1, 'cluster2', 'us-east'],
      [store2, 'cluster1', 'eu-west'],
    ] as const) {
      const [slice] = await waitFor(
        `reviews of ${remote} with a ready endpoint`,
        async () => {
          const slices = await slicesOf(store, `kubernetes.io/service-name=reviews,strait.dev/remote-cluster=${remote}`);
          return slices.some((s) => s.endpoints.some((e) => e.conditions?.ready)) && slices;
        },
        30_000,
      );
      assert.match(slice!.metadata.name, new RegExp(`^reviews-${remote}-global-[0-9a-f]{8}$`));
      assert.equal(slice!.metadata.labels!['multicluster.kubernetes.io/service-name'], 'reviews');
      assert.equal(slice!.metadata.labels!['mirror.linkerd.io/cluster-name'], remote);
      assert.equal(slice!.metadata.labels!['topology.kubernetes.io/region'], region);
      assert.equal(slice!.metadata.labels!['endpointslice.kubernetes.io/managed-by'], 'strait-link-controller');
      assert.ok(slice!.metadata.annotations!['strait.dev/gateway']);
      const imported = await waitFor('the reviews ServiceImport with both clusters', async () => {
        const object = await get(store, 'ServiceImport', 'reviews');
        return (object?.status as { clusters?: unknown[] } | undefined)?.clusters?.length === 2 && object;
      });
      assert.equal(imported.metadata.annotations?.['strait.dev/global'], 'true');
      assert.deepEqual((imported.status as { clusters: unknown }).clusters, [{ cluster: 'cluster1' }, { cluster: 'cluster2' }]);
      // Global services are not mirrored.
      assert.equal(await get(store, 'Service', `reviews-${remote}`), undefined);
    }
  });

  it('shared "false" keeps cluster1’s ratings home, while cluster1 still gets cluster2’s', async () => {
    await waitFor('cluster2’s ratings in cluster1', async () => (await slicesOf(store1, 'kubernetes.io/service-name=ratings,strait.dev/remote-cluster=cluster2')).length > 0);
    assert.deepEqual(await slicesOf(store2, 'kubernetes.io/service-name=ratings'), []);
  });

  it('export-to: cluster2 gets what names it, not what names cluster3; the unknown cluster is a warning on the Service', async () => {
    await waitFor('details in cluster2', async () => (await slicesOf(store2, 'kubernetes.io/service-name=details')).length > 0);
    assert.deepEqual(await slicesOf(store2, 'kubernetes.io/service-name=hidden'), []);
    const warning = await waitFor('the export-to warning', async () => conditionOf(await get(store1, 'Service', 'hidden'), 'strait.dev/ExportTo'));
    assert.equal(warning.status, 'False');
    assert.equal(warning.reason, 'UnknownCluster');
    assert.match(warning.message, /cluster3/);
  });

  it('a ServiceExport: a ServiceImport and clusterset member slices the cluster-local name does not merge', async () => {
    const [slice] = await waitFor('db’s member slice in cluster2', async () => {
      const slices = await slicesOf(store2, 'multicluster.kubernetes.io/service-name=db');
      return slices.length > 0 && slices;
    });
    assert.match(slice!.metadata.name, /^db-cluster1-import-[0-9a-f]{8}$/);
    assert.equal(slice!.metadata.labels!['kubernetes.io/service-name'], undefined);
    const imported = await waitFor('db’s ServiceImport in cluster2', () => get(store2, 'ServiceImport', 'db'));
    assert.equal(imported.metadata.annotations?.['strait.dev/global'], undefined);
    assert.deepEqual(imported.spec, { type: 'ClusterSetIP', ports: [{ name: 'http', protocol: 'TCP', port: 5000 }] });
    const exported = await waitFor('db’s export Ready in cluster1', async () => {
      const object = await get(store1, 'ServiceExport', 'db');
      return conditionOf(object, 'Ready')?.status === 'True' && object;
    });
    assert.equal(conditionOf(exported, 'Valid')?.status, 'True');
  });

  it('a ServiceExport without a Service is not Valid, and nothing is imported', async () => {
    const valid = await waitFor('the Valid condition', async () => conditionOf(await get(store2, 'ServiceExport', 'nothing'), 'Valid'));
    assert.deepEqual([valid.status, valid.reason], ['False', 'NoService']);
    assert.equal(await get(store1, 'ServiceImport', 'nothing'), undefined);
  });

  it('conflicting ports are reported on both sides, and the older definition wins in both ServiceImports', async () => {
    for (const store of [store1, store2]) {
      const conflict = await waitFor(`the conflict in ${store === store1 ? 'cluster1' : 'cluster2'}`, async () => conditionOf(await get(store, 'Service', 'web'), 'strait.dev/Conflict'));
      assert.equal(conflict.reason, 'PortConflict');
      assert.match(conflict.message, /the oldest definition, cluster1's/);
      const imported = await waitFor('web’s ServiceImport', () => get(store, 'ServiceImport', 'web'));
      assert.deepEqual((imported.spec as { ports: unknown }).ports, [{ name: 'http', protocol: 'TCP', port: 5000 }]);
      assert.equal(conditionOf(imported, 'Conflict')?.reason, 'PortConflict');
    }
  });

  it('a hand-written ServiceImport is refused with exit 1, and nothing changes', async () => {
    const result = await mesh.run(['apply', '-f', '-', '--cluster', 'cluster1'], {
      input: `${service('extra')}---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: extra, namespace: sample}\nspec: {type: ClusterSetIP, ports: [{port: 80}]}\n`,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /ServiceImport sample\/extra is managed by Strait: export the Service with a ServiceExport in the exporting cluster/);
    assert.equal(await get(store1, 'ServiceImport', 'extra'), undefined);
    assert.equal(await get(store1, 'Service', 'extra'), undefined);
  });

  it('sameness on a Link merges a Service with no annotation', async () => {
    assert.deepEqual(await slicesOf(store1, 'kubernetes.io/service-name=plain'), []);
    await mesh.ok(['link', '--from', 'cluster2', '--to', 'cluster1', '--sameness']);
    const link = await store1.get({ kind: 'Link', namespace: 'strait-system', name: 'cluster2' });
    assert.equal((link?.spec as { sameness?: boolean }).sameness, true);
    await waitFor('cluster2’s plain in cluster1', async () => (await slicesOf(store1, 'kubernetes.io/service-name=plain,strait.dev/remote-cluster=cluster2')).length > 0, 15_000);
    const imported = await waitFor('plain’s ServiceImport in cluster1', () => get(store1, 'ServiceImport', 'plain'));
    assert.deepEqual((imported.status as { clusters: unknown }).clusters, [{ cluster: 'cluster1' }, { cluster: 'cluster2' }]);
    // Only that link asked: cluster2 still gets nothing of cluster1's plain.
    assert.deepEqual(await slicesOf(store2, 'kubernetes.io/service-name=plain'), []);
  });

  it('unexported, its member slices and ServiceImport go; unlinked, every member slice of the link goes', async () => {
    await apply('cluster1', service('details'));
    await waitFor('details gone from cluster2', async () => (await slicesOf(store2, 'kubernetes.io/service-name=details')).length === 0 && (await get(store2, 'ServiceImport', 'details')) === undefined);

    await mesh.ok(['unlink', '--from', 'cluster2', '--to', 'cluster1']);
    assert.deepEqual(await slicesOf(store1, 'strait.dev/remote-cluster=cluster2'), []);
    // plain took part only through cluster2's member; ratings is global here too, so its ServiceImport stays, with cluster1 alone.
    await waitFor('plain’s ServiceImport gone from cluster1', async () => (await get(store1, 'ServiceImport', 'plain')) === undefined);
    await waitFor('ratings’ ServiceImport of cluster1 alone', async () => {
      const clusters = ((await get(store1, 'ServiceImport', 'ratings'))?.status as { clusters?: unknown } | undefined)?.clusters;
      return JSON.stringify(clusters) === JSON.stringify([{ cluster: 'cluster1' }]);
    });
  });
});
