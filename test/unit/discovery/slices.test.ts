// Discovery with EndpointSlices: a mirror's remote endpoints reached through their cluster's gateway
// (address and port from the slice, identity and SNI from its annotation, the gateway as the
// proxy), a TrafficSplit naming the mirror, and slices that change reaching the views watching them.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { ExportedServiceSchema } from '../../../src/api/gen/strait/mesh/v1/mesh_pb.js';
import type { Resource } from '../../../src/api/types.js';
import type { ResourceCache } from '../../../src/control/discovery/cache.js';
import { computeDestination, type DestinationState } from '../../../src/control/discovery/compute.js';
import { DiscoveryViews } from '../../../src/control/discovery/views.js';
import { mirrorObjects } from '../../../src/control/links/mirrors.js';
import { LocalStore } from '../../../src/store/local.js';
import { addPod, CLUSTER, service, settle, startCache, trafficSplit } from './fixtures.js';

const CTX = { ...CLUSTER, cluster: 'cluster2' };
const MIRROR = 'helloworld-cluster1.sample.svc.cluster.local';

function mirrors(options: { ready?: boolean[]; gatewayAlive?: boolean } = {}): Resource[] {
  const ready = options.ready ?? [true, true];
  const exported = create(ExportedServiceSchema, {
    namespace: 'sample',
    name: 'helloworld',
    ports: [{ name: 'http', port: 5000, protocol: 'TCP' }],
    endpoints: ready.map((r, i) => ({
      address: `127.20.1.${i + 1}`,
      ports: [{ name: 'http', port: 5000 }],
      pod: `helloworld-v1-${i}`,
      identity: 'spiffe://cluster.local/ns/sample/sa/helloworld',
      sni: `helloworld-v1-${i}.sample.cluster1.ep.strait.mesh`,
      ready: r,
    })),
  });
  return mirrorObjects(exported, { cluster: 'cluster1', gateway: '127.20.0.2:4143', gatewayAlive: options.gatewayAlive ?? true, trustDomain: 'cluster.local' }).objects;
}

function endpoints(state: DestinationState, backend: string): string[] {
  return [...(state.endpoints.get(backend)?.values() ?? [])].map((e) => `${e.address}:${e.port} ${e.identity} via ${e.proxy?.host}:${e.proxy?.port} sni ${e.proxy?.sni} ${e.cluster} ${e.pod}`).sort();
}

describe('remote endpoints from EndpointSlices', () => {
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

  it('a mirror’s ready endpoints are reached through the remote gateway by their SNI, verified by the workload identity', async () => {
    await store.apply(mirrors({ ready: [true, false] }));
    await settle();
    const state = computeDestination(cache, { namespace: 'sample', service: 'helloworld-cluster1', port: 5000 }, CTX);
    assert.equal(state.info.exists, true);
    assert.deepEqual(endpoints(state, MIRROR), [
      '127.20.1.1:5000 spiffe://cluster.local/ns/sample/sa/helloworld via 127.20.0.2:4143 sni helloworld-v1-0.sample.cluster1.ep.strait.mesh cluster1 helloworld-v1-0',
    ]);
  });

  it('with the gateway down the mirror has no endpoints', async () => {
    await store.apply(mirrors({ gatewayAlive: false }));
    await settle();
    assert.deepEqual(endpoints(computeDestination(cache, { namespace: 'sample', service: 'helloworld-cluster1', port: 5000 }, CTX), MIRROR), []);
  });

  it('a slice endpoint that names a gateway but no identity is left out rather than reached unverified', async () => {
    const [svc, slice] = mirrors() as [Resource, Resource];
    slice.metadata.annotations!['strait.dev/endpoint-identities'] = JSON.stringify({ '127.20.1.1': { identity: 'spiffe://cluster.local/ns/sample/sa/helloworld', sni: 'helloworld-v1-0.sample.cluster1.ep.strait.mesh' } });
    await store.apply([svc, slice]);
    await settle();
    const state = computeDestination(cache, { namespace: 'sample', service: 'helloworld-cluster1', port: 5000 }, CTX);
    assert.deepEqual(endpoints(state, MIRROR).map((e) => e.split(' ')[0]), ['127.20.1.1:5000']);
  });

  it('a plain slice without gateway or identity gives plaintext endpoints, added to the pods the selector finds', async () => {
    await store.apply([
      service('legacy', { ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: 'legacy' } }),
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'legacy-external', namespace: 'sample', labels: { 'kubernetes.io/service-name': 'legacy' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.0.0.5'] }, { addresses: ['10.0.0.6'], conditions: { ready: false } }],
        ports: [{ name: 'http', port: 9090, protocol: 'TCP' }, { name: 'other', port: 1, protocol: 'TCP' }],
      } as Resource,
    ]);
    await addPod(store, 'legacy-a', { ip: '127.0.0.20', labels: { app: 'legacy' }, ports: [{ name: 'http', containerPort: 8080 }] });
    await settle();
    const state = computeDestination(cache, { namespace: 'sample', service: 'legacy', port: 80 }, CTX);
    assert.deepEqual(
      [...state.endpoints.get('legacy.sample.svc.cluster.local')!.values()].map((e) => `${e.address}:${e.port} ${e.identity || '-'} ${e.proxy ? 'mtls' : 'plain'}`).sort(),
      ['10.0.0.5:9090 - plain', '127.0.0.20:8080 spiffe://cluster.local/ns/sample/sa/default mtls'],
    );
  });

  it('a TrafficSplit naming the mirror gets its remote endpoints beside the local ones', async () => {
    await store.apply([service('helloworld', { ports: [{ name: 'http', port: 5000 }] }), ...mirrors(), trafficSplit('helloworld', 'helloworld', [{ service: 'helloworld', weight: 50 }, { service: 'helloworld-cluster1', weight: 50 }])]);
    await addPod(store, 'helloworld-v2-a', { ip: '127.21.1.1' });
    await settle();
    const state = computeDestination(cache, { namespace: 'sample', service: 'helloworld', port: 5000 }, CTX);
    assert.deepEqual(state.info.backends.map((b) => [b.service, b.weight, b.exists]), [
      ['helloworld.sample.svc.cluster.local', 50, true],
      [MIRROR, 50, true],
    ]);
    assert.equal(endpoints(state, MIRROR).length, 2);
    assert.deepEqual([...state.endpoints.get('helloworld.sample.svc.cluster.local')!.values()].map((e) => e.cluster), ['cluster2']);
  });

  it('a slice that changes reaches the views watching its service, and only those', async () => {
    cache.stop();
    cache = await startCache(store, (change) => views.onChange(change));
    const views = new DiscoveryViews(cache, CTX);
    await store.apply(mirrors());
    await settle();
    const mirrorUpdates: number[] = [];
    const otherUpdates: number[] = [];
    const lease = views.watchDestination({ namespace: 'sample', service: 'helloworld-cluster1', port: 5000 }, () => mirrorUpdates.push(1));
    views.watchDestination({ namespace: 'sample', service: 'other', port: 5000 }, () => otherUpdates.push(1));
    assert.equal(endpoints(lease.view.state, MIRROR).length, 2);
    await store.apply(mirrors({ gatewayAlive: false }));
    await settle();
    assert.equal(mirrorUpdates.length, 1);
    assert.equal(otherUpdates.length, 0);
    assert.deepEqual(endpoints(lease.view.state, MIRROR), []);
    await store.delete([{ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }]);
    await settle();
    assert.equal(lease.view.state.info.exists, false);
  });
});
