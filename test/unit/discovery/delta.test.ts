import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { Protocol, ResumeSchema, type ResolveResponse } from '../../../src/api/gen/strait/discovery/v1/discovery_pb.js';
import { ResourceCache } from '../../../src/control/discovery/cache.js';
import { computeDestination, type DestinationState } from '../../../src/control/discovery/compute.js';
import { heldFromResume, heldOf, isEmptyUpdate, updateFrom } from '../../../src/control/discovery/delta.js';
import { DiscoveryViews } from '../../../src/control/discovery/views.js';
import { LocalStore } from '../../../src/store/local.js';
import { addPod, CLUSTER, service, setReady, settle, trafficSplit } from './fixtures.js';

const FQDN = 'helloworld.sample.svc.cluster.local';
const TARGET = { namespace: 'sample', service: 'helloworld', port: 5000 };

/** An update, plainly: what it replaces and which endpoints it adds and removes. */
function summary(update: ResolveResponse) {
  return {
    reset: update.reset,
    destination: update.destination !== undefined,
    endpoints: update.endpoints.map((c) => ({
      backend: c.backend,
      added: c.added.map((e) => `${e.address}:${e.port}`).sort(),
      removed: c.removed.map((e) => `${e.address}:${e.port}`).sort(),
    })),
  };
}

describe('incremental updates', () => {
  let store: LocalStore;
  let cache: ResourceCache;
  const compute = () => computeDestination(cache, TARGET, CLUSTER);

  beforeEach(async () => {
    store = LocalStore.memory();
    cache = new ResourceCache(store, { onChange: () => {}, onResync: () => {}, warn: (m) => assert.fail(m) });
    await cache.start();
    await store.apply([service('helloworld')]);
    await addPod(store, 'a', { ip: '127.0.0.1' });
    await addPod(store, 'b', { ip: '127.0.0.2' });
    await settle();
  });
  afterEach(async () => {
    cache.stop();
    await store.close();
  });

  it('a caller holding nothing gets everything, flagged as a reset', () => {
    assert.deepEqual(summary(updateFrom(undefined, compute())), {
      reset: true,
      destination: true,
      endpoints: [{ backend: FQDN, added: ['127.0.0.1:5000', '127.0.0.2:5000'], removed: [] }],
    });
  });

  it('a caller holding the current state gets nothing', () => {
    const state = compute();
    const update = updateFrom(heldOf(state), compute());
    assert.ok(isEmptyUpdate(update));
  });

  it('scaling up and down sends only the endpoints that came and went', async () => {
    const before = compute();
    await addPod(store, 'c', { ip: '127.0.0.3' });
    await setReady(store, 'a', '127.0.0.1', false);
    await settle();
    assert.deepEqual(summary(updateFrom(heldOf(before), compute())), {
      reset: false,
      destination: false,
      endpoints: [{ backend: FQDN, added: ['127.0.0.3:5000'], removed: ['127.0.0.1:5000'] }],
    });
  });

  it('an endpoint that changed is sent again, replacing the one at its address', async () => {
    const before = compute();
    const pod = (await store.get({ kind: 'Pod', namespace: 'sample', name: 'b' }))!;
    await store.apply([{ ...pod, spec: { ...(pod.spec as object), serviceAccountName: 'v2' } }]);
    await settle();
    const update = updateFrom(heldOf(before), compute());
    assert.deepEqual(summary(update).endpoints, [{ backend: FQDN, added: ['127.0.0.2:5000'], removed: [] }]);
    assert.equal(update.endpoints[0]!.added[0]!.identity, 'spiffe://cluster.local/ns/sample/sa/v2');
  });

  it('a new TrafficSplit sends the destination and the new backend’s endpoints', async () => {
    const before = compute();
    await store.apply([service('helloworld-v2', { selector: { app: 'helloworld' } }), trafficSplit('split', 'helloworld', [{ service: 'helloworld', weight: 80 }, { service: 'helloworld-v2', weight: 20 }])]);
    await settle();
    const update = updateFrom(heldOf(before), compute());
    assert.deepEqual(update.destination?.backends.map((b) => [b.service, b.weight]), [[FQDN, 80], ['helloworld-v2.sample.svc.cluster.local', 20]]);
    assert.deepEqual(summary(update).endpoints, [{ backend: 'helloworld-v2.sample.svc.cluster.local', added: ['127.0.0.1:5000', '127.0.0.2:5000'], removed: [] }]);
  });

  it('a resuming caller gets exactly what differs from what it says it holds', async () => {
    const held = compute();
    const resume = create(ResumeSchema, {
      destinationRevision: held.info.revision,
      endpoints: [...held.endpoints.get(FQDN)!.values()].map((e) => ({ backend: FQDN, address: e.address, port: e.port, revision: e.revision })),
    });
    assert.ok(isEmptyUpdate(updateFrom(heldFromResume(resume), compute())), 'it holds the current state');

    await addPod(store, 'c', { ip: '127.0.0.3' });
    await store.delete([{ kind: 'Pod', namespace: 'sample', name: 'a' }]);
    await settle();
    assert.deepEqual(summary(updateFrom(heldFromResume(resume), compute())), {
      reset: false,
      destination: false,
      endpoints: [{ backend: FQDN, added: ['127.0.0.3:5000'], removed: ['127.0.0.1:5000'] }],
    });

    const stale = create(ResumeSchema, { ...resume, destinationRevision: 'something-else' });
    assert.equal(updateFrom(heldFromResume(stale), compute()).destination?.revision, compute().info.revision);
  });
});

describe('views', () => {
  let store: LocalStore;
  let cache: ResourceCache;
  let views: DiscoveryViews;

  beforeEach(async () => {
    store = LocalStore.memory();
    cache = new ResourceCache(store, { onChange: (c) => views.onChange(c), onResync: () => views.onResync(), warn: (m) => assert.fail(m) });
    views = new DiscoveryViews(cache, CLUSTER);
    await cache.start();
    await store.apply([service('helloworld'), service('sleep', { selector: { app: 'sleep' } })]);
    await addPod(store, 'a', { ip: '127.0.0.1' });
    await settle();
  });
  afterEach(async () => {
    cache.stop();
    await store.close();
  });

  /** Watches TARGET and records each state the view moves to. */
  function watch(target = TARGET) {
    const seen: DestinationState[] = [];
    const lease = views.watchDestination(target, () => seen.push(lease.view.state));
    return { lease, seen };
  }
  const endpointCount = (s: DestinationState) => [...s.endpoints.values()].reduce((n, m) => n + m.size, 0);

  it('streams that watch one destination share one view', () => {
    const one = watch();
    const two = watch();
    assert.equal(one.lease.view, two.lease.view);
    assert.equal(views.destinationCount, 1);
    one.lease.release();
    assert.equal(views.destinationCount, 1);
    two.lease.release();
    two.lease.release();
    assert.equal(views.destinationCount, 0);
  });

  it('changes only when a change affects it, with a growing version', async () => {
    const { lease, seen } = watch();
    const first = lease.view.version;
    await addPod(store, 'sleep-1', { ip: '127.0.0.9', labels: { app: 'sleep' } });
    await addPod(store, 'other-ns', { ip: '127.0.0.8', namespace: 'elsewhere' });
    await settle();
    assert.equal(seen.length, 0, 'pods the service does not select change nothing');

    await addPod(store, 'b', { ip: '127.0.0.2' });
    await settle();
    assert.equal(seen.length, 1);
    assert.equal(endpointCount(seen[0]!), 2);
    assert.ok(Number(lease.view.version) > Number(first));

    await store.apply([trafficSplit('split', 'helloworld', [{ service: 'helloworld', weight: 1 }, { service: 'helloworld-v2', weight: 1 }])]);
    await settle();
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[1]!.info.backends.map((b) => b.exists), [true, false]);

    await store.apply([service('helloworld-v2', { selector: { app: 'helloworld' } })]);
    await settle();
    assert.equal(seen.length, 3, 'a backend that appears is noticed');
    assert.deepEqual(seen[2]!.info.backends.map((b) => b.exists), [true, true]);
    assert.equal(endpointCount(seen[2]!), 4);

    await store.delete([{ kind: 'TrafficSplit', namespace: 'sample', name: 'split' }]);
    await settle();
    assert.equal(seen.length, 4);
    await store.apply([service('helloworld-v2', { selector: { app: 'nothing' } })]);
    await settle();
    assert.equal(seen.length, 4, 'a service the destination no longer names changes nothing');
    lease.release();
  });

  it('a deleted service stops existing, and exists again when it comes back', async () => {
    const { lease, seen } = watch();
    await store.delete([{ kind: 'Service', namespace: 'sample', name: 'helloworld' }]);
    await settle();
    assert.equal(seen.at(-1)!.info.exists, false);
    await store.apply([service('helloworld')]);
    await settle();
    assert.equal(seen.at(-1)!.info.exists, true);
    assert.equal(endpointCount(seen.at(-1)!), 1);
    lease.release();
  });

  it('inbound views follow their pod and the services that select it', async () => {
    let changes = 0;
    const lease = views.watchInbound('sample', 'a', () => changes++);
    assert.equal(lease.view.state?.ports[0]?.protocol, Protocol.HTTP);
    await addPod(store, 'b', { ip: '127.0.0.2' });
    await settle();
    assert.equal(changes, 0, 'another pod');
    await store.apply([service('helloworld', { ports: [{ name: 'tcp-app', port: 5000, targetPort: 5000 }] })]);
    await settle();
    assert.equal(changes, 1);
    assert.equal(lease.view.state?.ports[0]?.protocol, Protocol.TCP, 'the selecting service now says TCP');
    await store.delete([{ kind: 'Pod', namespace: 'sample', name: 'a' }]);
    await settle();
    assert.equal(changes, 2);
    assert.equal(lease.view.state, undefined);
    lease.release();
  });
});
