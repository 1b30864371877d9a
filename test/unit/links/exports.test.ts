// What a cluster exports: only services an export rule selects and never a mirror, each with its
// meshed pods as endpoints; and the messages that bring a watcher up to date, in batches.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Service } from '../../../src/api/kinds.js';
import { isExported } from '../../../src/api/kinds/strait.js';
import type { ResourceCache } from '../../../src/control/discovery/cache.js';
import { exportedService, ExportIndex } from '../../../src/control/mesh-api/exports.js';
import { updatesFor } from '../../../src/control/mesh-api/server.js';
import { LocalStore } from '../../../src/store/local.js';
import { addPod, service, setReady, settle, startCache } from '../discovery/fixtures.js';

const CTX = { cluster: 'cluster1', trustDomain: 'cluster.local' };
const AS_MIRROR = { mirror: true, global: false, serviceExport: false, created: '' };
const exported = { 'mirror.linkerd.io/exported': 'true' };

function labelled(name: string, labels: Record<string, string>, options: Parameters<typeof service>[1] = {}): Service {
  const s = service(name, options);
  s.metadata.labels = labels;
  return s;
}

describe('export rules', () => {
  const svc = (labels: Record<string, string>) => labelled('web', labels);

  it('either export label exports a service; a mirror is never exported, whatever its labels', () => {
    assert.equal(isExported(svc(exported)), true);
    assert.equal(isExported(svc({ 'strait.dev/export': 'true' })), true);
    assert.equal(isExported(svc({ 'mirror.linkerd.io/exported': 'false' })), false);
    assert.equal(isExported(svc({})), false);
    const mirror = svc({ ...exported, 'mirror.linkerd.io/mirrored-service': 'true', 'mirror.linkerd.io/cluster-name': 'cluster2' });
    assert.equal(isExported(mirror), false);
    assert.equal(isExported(mirror, { matchLabels: { 'mirror.linkerd.io/cluster-name': 'cluster2' } }), false);
  });

  it('a credential’s selector replaces the export labels', () => {
    assert.equal(isExported(svc({ app: 'web' }), { matchLabels: { app: 'web' } }), true);
    assert.equal(isExported(svc(exported), { matchLabels: { app: 'web' } }), false);
  });
});

describe('exported services', () => {
  let store: LocalStore;
  let cache: ResourceCache;

  beforeEach(async () => {
    store = LocalStore.memory();
    cache = await startCache(store);
  });
  afterEach(async () => {
    cache.stop();
    await store.close();
  });

  it('endpoints are the meshed pods with an address: ports resolved, identity, SNI route key, readiness', async () => {
    await store.apply([labelled('helloworld', exported, { ports: [{ name: 'http', port: 5000, targetPort: 'http' }, { name: 'redis', port: 6379, targetPort: 6379 }] })]);
    await addPod(store, 'helloworld-v1-a', { ip: '127.20.1.1', serviceAccount: 'helloworld', ports: [{ name: 'http', containerPort: 8080 }] });
    await addPod(store, 'helloworld-v1-b', { ip: '127.20.1.2', ready: false, ports: [{ name: 'web', containerPort: 5000 }] });
    await addPod(store, 'helloworld-plain', { ip: '127.20.1.3', meshed: false });
    await addPod(store, 'helloworld-pending', {});
    await settle();
    const result = exportedService(cache.service('sample', 'helloworld')!, cache.pods('sample'), CTX, AS_MIRROR);
    assert.deepEqual(
      result.ports.map((p) => [p.name, p.port, p.appProtocol]),
      [
        ['http', 5000, ''],
        ['redis', 6379, 'tcp'],
      ],
    );
    assert.deepEqual(
      result.endpoints.map((e) => ({ address: e.address, ports: e.ports.map((p) => `${p.name}:${p.port}`), pod: e.pod, identity: e.identity, sni: e.sni, ready: e.ready })),
      [
        {
          address: '127.20.1.1',
          ports: ['http:8080', 'redis:6379'],
          pod: 'helloworld-v1-a',
          identity: 'spiffe://cluster.local/ns/sample/sa/helloworld',
          sni: 'helloworld-v1-a.sample.cluster1.ep.strait.mesh',
          ready: true,
        },
        // The pod has no port named http: only the numbered one resolves, as Kubernetes skips it.
        { address: '127.20.1.2', ports: ['redis:6379'], pod: 'helloworld-v1-b', identity: 'spiffe://cluster.local/ns/sample/sa/default', sni: 'helloworld-v1-b.sample.cluster1.ep.strait.mesh', ready: false },
      ],
    );
    assert.equal(result.headless, false);
    assert.deepEqual(result.labels, exported);
  });

  it('a StatefulSet pod of a headless service carries its hostname; a pod of another subdomain does not', async () => {
    await store.apply([labelled('web', exported, { clusterIP: 'None', selector: { app: 'web' } })]);
    for (const [name, subdomain] of [['web-0', 'web'], ['web-1', 'other']] as const) {
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'sample', labels: { app: 'web' } }, spec: { hostname: name, subdomain, containers: [{ name: 'app', image: 'x', ports: [{ name: 'http', containerPort: 5000 }] }, { name: 'strait-proxy', image: 'strait/proxy' }] } };
      await store.apply([pod]);
      await setReady(store, name, name === 'web-0' ? '127.20.1.10' : '127.20.1.11', true);
    }
    await settle();
    const result = exportedService(cache.service('sample', 'web')!, cache.pods('sample'), CTX, AS_MIRROR);
    assert.equal(result.headless, true);
    assert.deepEqual(result.endpoints.map((e) => [e.pod, e.hostname]), [['web-0', 'web-0'], ['web-1', '']]);
  });

  it('the index follows labels, services and pods, and never holds a mirror', async () => {
    // The cache passes its changes on, as the mesh API's does.
    cache.stop();
    cache = await startCache(store, (change) => index.onChange(change));
    const index = new ExportIndex(cache, { sameness: false }, CTX);
    let notified = 0;
    index.listen(() => notified++);

    await store.apply([labelled('helloworld', exported), labelled('internal', {}), labelled('helloworld-cluster2', { ...exported, 'mirror.linkerd.io/mirrored-service': 'true' })]);
    await settle();
    assert.deepEqual([...index.current.keys()], ['sample/helloworld']);
    const before = index.current.get('sample/helloworld')!.revision;

    await addPod(store, 'helloworld-v1-a', { ip: '127.20.1.1' });
    await settle();
    assert.equal(index.current.get('sample/helloworld')!.endpoints.length, 1);
    assert.notEqual(index.current.get('sample/helloworld')!.revision, before);

    // A pod of no exported service changes nothing.
    const count = notified;
    await addPod(store, 'other', { ip: '127.20.1.9', labels: { app: 'other' } });
    await settle();
    assert.equal(notified, count);

    await store.apply([labelled('helloworld', {})]);
    await settle();
    assert.deepEqual([...index.current.keys()], []);
    await store.apply([labelled('internal', { 'strait.dev/export': 'true' })]);
    await settle();
    assert.deepEqual([...index.current.keys()], ['sample/internal']);
  });
});

describe('export stream updates', () => {
  const exports = (n: number, revision = 'r1') =>
    new Map(Array.from({ length: n }, (_, i) => [`ns/svc-${i}`, { namespace: 'ns', name: `svc-${i}`, revision } as never]));

  it('the first answer is the whole set in batches of 500, the last one marked synced', () => {
    const held = new Map<string, string>();
    const messages = [...updatesFor(held, exports(1234), true)];
    assert.deepEqual(messages.map((m) => m.services.length), [500, 500, 234]);
    assert.deepEqual(messages.map((m) => m.synced), [false, false, true]);
    assert.equal(held.size, 1234);
  });

  it('a first answer with nothing exported is still sent, synced', () => {
    const messages = [...updatesFor(new Map(), new Map(), true)];
    assert.deepEqual(messages.map((m) => [m.services.length, m.removed.length, m.synced]), [[0, 0, true]]);
  });

  it('a resuming watcher gets only what differs from what it holds; nothing changed sends nothing', () => {
    const held = new Map([
      ['ns/svc-0', 'r1'],
      ['ns/svc-1', 'old'],
      ['ns/gone', 'r1'],
    ]);
    const [message, ...more] = [...updatesFor(held, exports(3), true)];
    assert.equal(more.length, 0);
    assert.deepEqual(message!.services.map((s) => s.name), ['svc-1', 'svc-2']);
    assert.deepEqual(message!.removed.map((r) => `${r.namespace}/${r.name}`), ['ns/gone']);
    assert.equal(message!.synced, true);
    assert.deepEqual([...updatesFor(held, exports(3), false)], []);
  });
});
