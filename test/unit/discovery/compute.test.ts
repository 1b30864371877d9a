import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { LoadBalancer, Protocol } from '../../../src/api/gen/strait/discovery/v1/discovery_pb.js';
import type { ResourceCache } from '../../../src/control/discovery/cache.js';
import { computeDestination, computeInbound, type DestinationState } from '../../../src/control/discovery/compute.js';
import type { ServiceTarget } from '../../../src/control/discovery/names.js';
import { LocalStore } from '../../../src/store/local.js';
import { addPod, CLUSTER, service, settle, startCache, trafficSplit } from './fixtures.js';

const HELLOWORLD: ServiceTarget = { namespace: 'sample', service: 'helloworld', port: 5000 };
const FQDN = 'helloworld.sample.svc.cluster.local';

/** The endpoints of a state, plainly: backend → sorted "address:port identity proxy pod". */
function endpoints(state: DestinationState): Record<string, string[]> {
  return Object.fromEntries(
    [...state.endpoints].map(([backend, byKey]) => [
      backend,
      [...byKey.values()].map((e) => `${e.address}:${e.port} ${e.identity || '-'} ${e.proxy ? `${e.proxy.host}:${e.proxy.port}` : '-'} ${e.cluster} ${e.pod}`).sort(),
    ]),
  );
}

function backends(state: DestinationState): string[] {
  return state.info.backends.map((b) => `${b.service} ${b.weight} ${b.exists ? 'exists' : 'missing'}`);
}

describe('destinations from the store', () => {
  let store: LocalStore;
  let cache: ResourceCache;
  const compute = (target: ServiceTarget = HELLOWORLD) => computeDestination(cache, target, CLUSTER);

  beforeEach(async () => {
    store = LocalStore.memory();
    cache = await startCache(store);
  });
  afterEach(async () => {
    cache.stop();
    await store.close();
  });

  it('a service’s ready pods are its endpoints, each with its identity and proxy', async () => {
    await store.apply([service('helloworld', { ports: [{ name: 'http', port: 5000, targetPort: 5000 }] })]);
    await addPod(store, 'helloworld-v1-a', { ip: '127.0.0.10', labels: { app: 'helloworld', version: 'v1' }, serviceAccount: 'helloworld' });
    await addPod(store, 'helloworld-v2-a', { ip: '127.0.0.11', labels: { app: 'helloworld', version: 'v2' } });
    await addPod(store, 'helloworld-v2-b', { ip: '127.0.0.12', ready: false });
    await addPod(store, 'helloworld-pending', {});
    await addPod(store, 'sleep', { ip: '127.0.0.13', labels: { app: 'sleep' } });
    await settle();
    const state = compute();
    assert.equal(state.info.exists, true);
    assert.equal(state.info.service, FQDN);
    assert.equal(state.info.namespace, 'sample');
    assert.deepEqual(state.info.ports.map((p) => [p.name, p.port, p.protocol]), [['http', 5000, Protocol.HTTP]]);
    assert.equal(state.info.loadBalancer, LoadBalancer.EWMA);
    assert.deepEqual(backends(state), [`${FQDN} 1 exists`]);
    assert.deepEqual(endpoints(state), {
      [FQDN]: [
        '127.0.0.10:5000 spiffe://cluster.local/ns/sample/sa/helloworld 127.0.0.10:4143 cluster1 helloworld-v1-a',
        '127.0.0.11:5000 spiffe://cluster.local/ns/sample/sa/default 127.0.0.11:4143 cluster1 helloworld-v2-a',
      ],
    });
  });

  it('a selector finds its pods through the label index, as labels change, are added and removed', async () => {
    await addPod(store, 'a', { labels: { app: 'helloworld', version: 'v1' } });
    await addPod(store, 'b', { labels: { app: 'helloworld', version: 'v2' } });
    await addPod(store, 'c', { labels: { app: 'sleep' } });
    await addPod(store, 'd', { namespace: 'other', labels: { app: 'helloworld', version: 'v1' } });
    await settle();
    const names = (selector: Record<string, string>, namespace = 'sample') => [...cache.selectedPods(namespace, selector)].map((p) => p.metadata.name).sort();
    assert.deepEqual(names({ app: 'helloworld' }), ['a', 'b']);
    assert.deepEqual(names({ app: 'helloworld', version: 'v1' }), ['a']);
    assert.deepEqual(names({ app: 'helloworld', version: 'v3' }), []);
    assert.deepEqual(names({ app: 'helloworld' }, 'other'), ['d']);
    assert.deepEqual(names({}), [], 'an empty selector selects nothing, as a Service without one has no pod endpoints');
    await store.apply([{ ...(await store.get({ kind: 'Pod', namespace: 'sample', name: 'b' }))!, metadata: { name: 'b', namespace: 'sample', labels: { app: 'sleep' } } }]);
    await store.delete([{ kind: 'Pod', namespace: 'sample', name: 'a' }]);
    await addPod(store, 'e', { labels: { app: 'helloworld', version: 'v1' } });
    await settle();
    assert.deepEqual(names({ app: 'helloworld' }), ['e']);
    assert.deepEqual(names({ app: 'sleep' }), ['b', 'c']);
  });

  it('an unmeshed pod is reached directly, without identity', async () => {
    await store.apply([service('helloworld')]);
    await addPod(store, 'plain', { ip: '127.0.0.20', meshed: false });
    await settle();
    assert.deepEqual(endpoints(compute()), { [FQDN]: ['127.0.0.20:5000 - - cluster1 plain'] });
  });

  it('resolves a named targetPort per pod and skips pods without that port', async () => {
    await store.apply([service('helloworld', { ports: [{ name: 'http', port: 80, targetPort: 'web' }] })]);
    await addPod(store, 'a', { ip: '127.0.0.21', ports: [{ name: 'web', containerPort: 8080 }] });
    await addPod(store, 'b', { ip: '127.0.0.22', ports: [{ name: 'web', containerPort: 9090 }] });
    await addPod(store, 'c', { ip: '127.0.0.23', ports: [{ name: 'other', containerPort: 8080 }] });
    await settle();
    const state = compute({ namespace: 'sample', service: 'helloworld', port: 80 });
    assert.deepEqual(endpoints(state)[FQDN]!.map((e) => e.split(' ')[0]), ['127.0.0.21:8080', '127.0.0.22:9090']);
  });

  it('picks the addressed port: the one named, else 80, else the first; an unknown port does not exist', async () => {
    await store.apply([
      service('helloworld', { ports: [{ name: 'admin', port: 9000, targetPort: 9001 }, { name: 'http', port: 5000, targetPort: 5001 }] }),
      service('web', { selector: { app: 'helloworld' }, ports: [{ name: 'metrics', port: 9100, targetPort: 9101 }, { name: 'http', port: 80, targetPort: 8080 }] }),
    ]);
    await addPod(store, 'a', { ip: '127.0.0.30' });
    await settle();
    const portOf = (target: ServiceTarget) => endpoints(compute(target))[`${target.service}.sample.svc.cluster.local`]?.[0]?.split(' ')[0];
    assert.equal(portOf({ namespace: 'sample', service: 'helloworld', port: 5000 }), '127.0.0.30:5001');
    assert.equal(portOf({ namespace: 'sample', service: 'helloworld' }), '127.0.0.30:9001');
    assert.equal(portOf({ namespace: 'sample', service: 'web' }), '127.0.0.30:8080');
    const wrong = compute({ namespace: 'sample', service: 'helloworld', port: 1234 });
    assert.equal(wrong.info.exists, false);
    assert.equal(wrong.endpoints.size, 0);
  });

  it('a headless service without ports passes the port through', async () => {
    await store.apply([service('db', { selector: { app: 'db' }, ports: [], clusterIP: 'None' })]);
    await addPod(store, 'db-0', { ip: '127.0.0.31', labels: { app: 'db' } });
    await settle();
    assert.deepEqual(endpoints(compute({ namespace: 'sample', service: 'db', port: 5432 }))['db.sample.svc.cluster.local']!.map((e) => e.split(' ')[0]), ['127.0.0.31:5432']);
  });

  it('an unknown service does not exist', () => {
    const state = compute({ namespace: 'sample', service: 'nope', port: 80 });
    assert.equal(state.info.exists, false);
    assert.equal(state.info.service, '');
    assert.deepEqual(state.info.backends, []);
    assert.deepEqual(state.services, ['sample/nope'], 'it depends on the service, so that its creation is noticed');
  });

  it('a TrafficSplit makes weighted backends, in any SMI version; a missing backend exists:false', async () => {
    await store.apply([
      service('helloworld'),
      service('helloworld-v2', { selector: { app: 'helloworld', version: 'v2' } }),
      trafficSplit('helloworld', 'helloworld', [
        { service: 'helloworld', weight: 0.5 },
        { service: 'helloworld-v2', weight: 0.25 },
        { service: 'helloworld-cluster1', weight: 0.25 },
      ], 'split.smi-spec.io/v1alpha1'),
    ]);
    await addPod(store, 'v1', { ip: '127.0.0.40', labels: { app: 'helloworld', version: 'v1' } });
    await addPod(store, 'v2', { ip: '127.0.0.41', labels: { app: 'helloworld', version: 'v2' } });
    await settle();
    const state = compute();
    assert.deepEqual(backends(state), [
      `${FQDN} 0.5 exists`,
      'helloworld-v2.sample.svc.cluster.local 0.25 exists',
      'helloworld-cluster1.sample.svc.cluster.local 0.25 missing',
    ]);
    assert.deepEqual(
      Object.fromEntries(Object.entries(endpoints(state)).map(([b, e]) => [b, e.map((x) => x.split(' ')[0])])),
      {
        [FQDN]: ['127.0.0.40:5000', '127.0.0.41:5000'],
        'helloworld-v2.sample.svc.cluster.local': ['127.0.0.41:5000'],
        'helloworld-cluster1.sample.svc.cluster.local': [],
      },
    );
    assert.deepEqual(state.services.sort(), ['sample/helloworld', 'sample/helloworld-cluster1', 'sample/helloworld-v2']);
  });

  it('a split naming its root in full form is still the root’s; of two splits, the oldest (then the first by name) wins', async () => {
    await store.apply([service('helloworld'), service('b'), service('c')]);
    await store.apply([trafficSplit('b-split', 'helloworld', [{ service: 'c', weight: 1 }])]);
    await store.apply([trafficSplit('a-split', 'helloworld.sample.svc.cluster.local', [{ service: 'b', weight: 1 }])]);
    const [a, b] = await Promise.all(['a-split', 'b-split'].map((name) => store.get({ kind: 'TrafficSplit', namespace: 'sample', name })));
    // Created within one second (creationTimestamp's resolution) or not, a-split is the answer only by name.
    const expected = a!.metadata.creationTimestamp! > b!.metadata.creationTimestamp! ? 'c' : 'b';
    await settle();
    assert.deepEqual(backends(compute()), [`${expected}.sample.svc.cluster.local 1 exists`]);
  });

  it('reads the load balancer from strait.dev/load-balancer', async () => {
    await store.apply([service('helloworld', { annotations: { 'strait.dev/load-balancer': 'round-robin' } }), service('other', { annotations: { 'strait.dev/load-balancer': 'ewma' } })]);
    await settle();
    assert.equal(compute().info.loadBalancer, LoadBalancer.ROUND_ROBIN);
    assert.equal(compute({ namespace: 'sample', service: 'other' }).info.loadBalancer, LoadBalancer.EWMA);
  });

  it('revisions follow content: equal objects, equal revisions; a change, a new one', async () => {
    await store.apply([service('helloworld')]);
    await addPod(store, 'a', { ip: '127.0.0.50' });
    await settle();
    const before = compute();
    const again = compute();
    assert.equal(again.info.revision, before.info.revision);
    const endpointRevision = (s: DestinationState) => [...s.endpoints.get(FQDN)!.values()][0]!.revision;
    assert.equal(endpointRevision(again), endpointRevision(before));
    await store.apply([{ ...service('helloworld'), metadata: { name: 'helloworld', namespace: 'sample', annotations: { 'strait.dev/load-balancer': 'round-robin' } } }]);
    await store.apply([{ ...(await store.get({ kind: 'Pod', namespace: 'sample', name: 'a' }))!, spec: { ...((await store.get({ kind: 'Pod', namespace: 'sample', name: 'a' }))!.spec as object), serviceAccountName: 'other' } }]);
    await settle();
    const after = compute();
    assert.notEqual(after.info.revision, before.info.revision);
    assert.notEqual(endpointRevision(after), endpointRevision(before));
  });
});

describe('inbound configuration from the store', () => {
  it('lists the app’s ports with the protocol the selecting service declares', async () => {
    const store = LocalStore.memory();
    const cache = await startCache(store);
    try {
      await store.apply([
        service('helloworld', { ports: [{ name: 'http', port: 80, targetPort: 'web' }] }),
        service('helloworld-db', { selector: { app: 'helloworld' }, ports: [{ name: 'db', port: 7000, targetPort: 7000, appProtocol: 'tcp' }] }),
      ]);
      await addPod(store, 'a', { ip: '127.0.0.60', ports: [{ name: 'web', containerPort: 8080 }, { containerPort: 7000 }, { name: 'redis', containerPort: 7379 }, { containerPort: 9000 }, { containerPort: 53, protocol: 'UDP' }] });
      await settle();
      const inbound = computeInbound(cache, 'sample', 'a', CLUSTER);
      assert.ok(inbound);
      assert.deepEqual([inbound.pod, inbound.namespace, inbound.cluster], ['a', 'sample', 'cluster1']);
      assert.deepEqual(inbound.ports.map((p) => [p.name, p.port, p.protocol === Protocol.HTTP ? 'http' : 'tcp']), [
        ['web', 8080, 'http'],
        ['', 7000, 'tcp'],
        ['redis', 7379, 'tcp'],
        ['', 9000, 'http'],
      ]);
      assert.equal(computeInbound(cache, 'sample', 'nope', CLUSTER), undefined);
    } finally {
      cache.stop();
      await store.close();
    }
  });
});
