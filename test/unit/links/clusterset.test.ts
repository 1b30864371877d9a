// The clusterset controller on a real store: ServiceImports from member slices and local Services,
// conflict conditions on every object that takes part, a ServiceExport without its Service, the
// export-to warning, removal when the last member goes — and nothing written when nothing changed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { pino } from 'pino';
import { ExportedServiceSchema } from '../../../src/api/gen/strait/mesh/v1/mesh_pb.js';
import type { Condition } from '../../../src/api/conditions.js';
import type { Resource } from '../../../src/api/types.js';
import { ClustersetController } from '../../../src/control/links/clusterset.js';
import { memberSlices } from '../../../src/control/links/mirrors.js';
import { grantRecord } from '../../../src/control/mesh-api/credentials.js';
import { LocalStore } from '../../../src/store/local.js';

const log = pino({ level: 'silent' });
const T1 = '2024-01-01T00:00:00Z';

/** The slices cluster2's link controller would write here for its `reviews`. */
function remoteReviews(port: number, created = T1, cluster = 'cluster2', extra: { global?: boolean; serviceExport?: boolean } = { global: true }): Resource[] {
  const exported = create(ExportedServiceSchema, { namespace: 'sample', name: 'reviews', ports: [{ name: 'http', port, protocol: 'TCP', appProtocol: '' }], created, ...extra });
  return memberSlices(exported, extra.global ? 'global' : 'import', { cluster, gateway: '127.20.0.34:4143', gatewayAlive: true, trustDomain: 'cluster.local' }).objects;
}

const service = (name: string, annotations: Record<string, string> = {}, port = 9080): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'sample', annotations },
  spec: { type: 'ClusterIP', selector: { app: name }, ports: [{ name: 'http', port, targetPort: port, protocol: 'TCP' }] },
});

const conditionsOf = (object: Resource | undefined) => (object?.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
const condition = (object: Resource | undefined, type: string) => conditionsOf(object).find((c) => c.type === type);

describe('the clusterset controller', () => {
  let store: LocalStore;
  let controller: ClustersetController;
  const get = (kind: string, name: string) => store.get({ kind, namespace: 'sample', name });
  const settled = async () => {
    await new Promise((r) => setImmediate(r));
    await controller.settled();
  };

  before(async () => {
    store = LocalStore.memory();
    await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }]);
    controller = new ClustersetController({ store, cluster: 'cluster1', log });
    await controller.start();
  });
  after(async () => {
    await controller.stop();
    await store.close();
  });

  it('a linked cluster’s global member makes a global ServiceImport; the local Service joins it', async () => {
    await store.apply(remoteReviews(9080));
    await settled();
    let imported = await get('ServiceImport', 'reviews');
    assert.deepEqual(imported?.spec, { type: 'ClusterSetIP', ports: [{ name: 'http', protocol: 'TCP', port: 9080 }] });
    assert.equal(imported?.metadata.annotations?.['strait.dev/global'], 'true');
    assert.equal(imported?.metadata.labels?.['app.kubernetes.io/managed-by'], 'strait');
    assert.deepEqual((imported?.status as { clusters: unknown }).clusters, [{ cluster: 'cluster2' }]);

    await store.apply([service('reviews')]);
    await settled();
    imported = await get('ServiceImport', 'reviews');
    assert.deepEqual((imported?.status as { clusters: unknown }).clusters, [{ cluster: 'cluster1' }, { cluster: 'cluster2' }]);
    assert.equal(condition(await get('Service', 'reviews'), 'strait.dev/Conflict'), undefined);
  });

  it('conflicting ports: conditions on the Service and the ServiceImport, and the older definition’s ports win', async () => {
    // cluster2's definition (2024) is older than the local Service (created just now).
    await store.apply(remoteReviews(9081));
    await settled();
    const imported = await get('ServiceImport', 'reviews');
    assert.deepEqual((imported?.spec as { ports: unknown }).ports, [{ name: 'http', protocol: 'TCP', port: 9081 }]);
    const onImport = condition(imported, 'Conflict');
    assert.equal(onImport?.reason, 'PortConflict');
    const onService = condition(await get('Service', 'reviews'), 'strait.dev/Conflict');
    assert.equal(onService?.status, 'True');
    assert.equal(onService?.reason, 'PortConflict');
    assert.match(onService.message, /cluster2.*cluster1.*the oldest definition, cluster2's/);

    // Written once: a flush with nothing new writes nothing.
    const version = (await get('Service', 'reviews'))!.metadata.resourceVersion;
    await store.apply([service('reviews')]);
    await settled();
    assert.equal((await get('Service', 'reviews'))!.metadata.resourceVersion, version);

    // Agreement again clears the conditions.
    await store.apply(remoteReviews(9080));
    await settled();
    assert.equal(condition(await get('Service', 'reviews'), 'strait.dev/Conflict'), undefined);
    assert.equal(condition(await get('ServiceImport', 'reviews'), 'Conflict'), undefined);
  });

  it('the last member gone, the ServiceImport goes', async () => {
    await store.delete([{ kind: 'Service', namespace: 'sample', name: 'reviews' }, ...remoteReviews(9080).map((s) => ({ kind: s.kind, namespace: 'sample', name: s.metadata.name }))]);
    await settled();
    assert.equal(await get('ServiceImport', 'reviews'), undefined);
  });

  it('a ServiceExport without its Service is not Valid (once, not in a loop); with it, Valid and Ready, and a ServiceImport', async () => {
    await store.apply([{ apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name: 'db', namespace: 'sample' } }]);
    await settled();
    let exported = await get('ServiceExport', 'db');
    assert.deepEqual([condition(exported, 'Valid')?.status, condition(exported, 'Valid')?.reason], ['False', 'NoService']);
    assert.equal(condition(exported, 'Ready')?.status, 'False');
    assert.equal(await get('ServiceImport', 'db'), undefined);
    const version = exported!.metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 50));
    await settled();
    assert.equal((await get('ServiceExport', 'db'))!.metadata.resourceVersion, version);

    await store.apply([service('db', {}, 5432)]);
    await settled();
    exported = await get('ServiceExport', 'db');
    assert.deepEqual(
      ['Valid', 'Conflict', 'Ready'].map((t) => [t, condition(exported, t)?.status, condition(exported, t)?.reason]),
      [
        ['Valid', 'True', 'Valid'],
        ['Conflict', 'False', 'NoConflicts'],
        ['Ready', 'True', 'Exported'],
      ],
    );
    const imported = await get('ServiceImport', 'db');
    assert.equal(imported?.metadata.annotations, undefined);
    assert.deepEqual((imported?.status as { clusters: unknown }).clusters, [{ cluster: 'cluster1' }]);
  });

  it('export-to naming a cluster without a link warns on the Service until the link exists', async () => {
    await store.apply([service('ratings', { 'service.cilium.io/global': 'true', 'strait.dev/export-to': 'cluster2' })]);
    await settled();
    const warning = condition(await get('Service', 'ratings'), 'strait.dev/ExportTo');
    assert.deepEqual([warning?.status, warning?.reason], ['False', 'UnknownCluster']);
    await store.apply([grantRecord({ id: '0123456789abcdef', consumer: 'cluster2', expiresAt: new Date(Date.now() + 60_000) })]);
    await settled();
    assert.equal(condition(await get('Service', 'ratings'), 'strait.dev/ExportTo'), undefined);
  });
});
