// Writing one link's mirrors into a store: only what differs, kept as they should be when changed
// by hand, never over an object that is not a mirror, waiting for a namespace to exist, and
// removing stale mirrors only once the remote's whole set is known.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { pino } from 'pino';
import { ExportedServiceSchema } from '../../../src/api/gen/strait/mesh/v1/mesh_pb.js';
import type { Resource } from '../../../src/api/types.js';
import { mirrorObjects } from '../../../src/control/links/mirrors.js';
import { MirrorWriter, removeMirrors } from '../../../src/control/links/writer.js';
import { LocalStore } from '../../../src/store/local.js';
import { settle } from '../discovery/fixtures.js';

const OPTIONS = { cluster: 'cluster1', gateway: '127.20.0.2:4143', gatewayAlive: true, trustDomain: 'cluster.local' };

function mirrorsOf(name: string, namespace = 'sample', ready = true): Resource[] {
  const exported = create(ExportedServiceSchema, {
    namespace,
    name,
    ports: [{ name: 'http', port: 5000, protocol: 'TCP' }],
    endpoints: [{ address: '127.20.1.1', ports: [{ name: 'http', port: 5000 }], pod: `${name}-0`, identity: 'spiffe://cluster.local/ns/sample/sa/default', sni: `${name}-0.${namespace}.cluster1.ep.strait.mesh`, ready }],
  });
  return mirrorObjects(exported, OPTIONS).objects;
}

const names = async (store: LocalStore, kind: string) => (await store.list(kind)).items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`).sort();

describe('the mirror writer', () => {
  let store: LocalStore;
  let writer: MirrorWriter;

  beforeEach(async () => {
    store = LocalStore.memory();
    await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }]);
    writer = new MirrorWriter({ store, cluster: 'cluster1', log: pino({ level: 'silent' }) });
    await writer.start();
  });
  afterEach(async () => {
    await writer.stop();
    await store.close();
  });

  const written = async () => {
    await settle();
    await writer.settled();
  };

  it('writes the mirrors, rewrites only what changed, and removes a service’s mirrors with it', async () => {
    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    writer.set('sample/web', mirrorsOf('web'));
    await written();
    assert.deepEqual(await names(store, 'Service'), ['sample/helloworld-cluster1', 'sample/web-cluster1']);
    assert.equal((await names(store, 'EndpointSlice')).length, 2);
    const version = (await store.list('Service')).resourceVersion;

    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    await written();
    assert.equal((await store.list('Service')).resourceVersion, version, 'the same mirrors again write nothing');

    writer.set('sample/helloworld', mirrorsOf('helloworld', 'sample', false));
    await written();
    const slice = (await store.list('EndpointSlice', { labelSelector: 'kubernetes.io/service-name=helloworld-cluster1' })).items[0] as unknown as { endpoints: { conditions: { ready: boolean } }[] };
    assert.equal(slice.endpoints[0]!.conditions.ready, false);

    writer.set('sample/web', undefined);
    await written();
    assert.deepEqual(await names(store, 'Service'), ['sample/helloworld-cluster1']);
    assert.equal((await names(store, 'EndpointSlice')).length, 1);
  });

  it('a mirror deleted or changed by hand is written back', async () => {
    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    await written();
    await store.delete([{ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }]);
    await written();
    assert.deepEqual(await names(store, 'Service'), ['sample/helloworld-cluster1']);
    const mirror = (await store.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }))!;
    await store.apply([{ ...mirror, metadata: { ...mirror.metadata, resourceVersion: undefined }, spec: { type: 'ClusterIP', ports: [{ port: 1, protocol: 'TCP', targetPort: 1 }] } }]);
    await written();
    const restored = (await store.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }))!;
    assert.deepEqual((restored.spec as { ports: { port: number }[] }).ports.map((p) => p.port), [5000]);
  });

  it('never overwrites a Service that is not a mirror', async () => {
    const own: Resource = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'helloworld-cluster1', namespace: 'sample' }, spec: { selector: { app: 'mine' }, ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }] } };
    await store.apply([own]);
    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    await written();
    const kept = (await store.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }))!;
    assert.deepEqual(kept.spec, own.spec);
    assert.deepEqual([...writer.conflicts.keys()], ['Service/sample/helloworld-cluster1']);
  });

  it('mirrors in a namespace this cluster lacks wait until it is created', async () => {
    writer.set('later/web', mirrorsOf('web', 'later'));
    await written();
    assert.deepEqual(await names(store, 'Service'), []);
    await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } }]);
    await written();
    assert.deepEqual(await names(store, 'Service'), ['later/web-cluster1']);
  });

  it('after a restart, old mirrors stay until the remote’s whole set is known; then the stale ones go', async () => {
    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    writer.set('sample/gone', mirrorsOf('gone'));
    await written();
    await writer.stop();

    writer = new MirrorWriter({ store, cluster: 'cluster1', log: pino({ level: 'silent' }) });
    await writer.start();
    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    await written();
    assert.deepEqual(await names(store, 'Service'), ['sample/gone-cluster1', 'sample/helloworld-cluster1']);
    writer.markAll();
    await written();
    assert.deepEqual(await names(store, 'Service'), ['sample/helloworld-cluster1']);
    assert.equal((await names(store, 'EndpointSlice')).length, 1);
  });

  it('removeMirrors removes every object of one link and nothing else', async () => {
    writer.set('sample/helloworld', mirrorsOf('helloworld'));
    await written();
    const other = mirrorObjects(create(ExportedServiceSchema, { namespace: 'sample', name: 'helloworld', ports: [{ name: 'http', port: 5000 }] }), { ...OPTIONS, cluster: 'cluster3' }).objects;
    await store.apply([...other, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'helloworld', namespace: 'sample' }, spec: { ports: [{ port: 80 }] } }]);
    assert.equal(await removeMirrors(store, 'cluster1'), 2);
    assert.deepEqual(await names(store, 'Service'), ['sample/helloworld', 'sample/helloworld-cluster3']);
  });
});
