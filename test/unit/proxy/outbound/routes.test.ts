import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../../../../src/proxy/destinations.js';
import { ProxyMetrics } from '../../../../src/proxy/metrics.js';
import { RouteTable } from '../../../../src/proxy/outbound/logical/table.js';
import { StaticResolver, type StaticDestination } from '../../../../src/proxy/static-resolver.js';

const ID = 'spiffe://cluster.local/ns/sample/sa/helloworld';

function endpoint(pod: string, ready = true): Endpoint {
  return { address: `10.0.0.${pod.length}`, port: 5000, identity: ID, cluster: 'cluster1', pod, ready };
}

function destination(legs: { service: string; weight: number; endpoints: Endpoint[]; exists?: boolean }[]): StaticDestination {
  return {
    service: 'helloworld.sample.svc.cluster.local',
    namespace: 'sample',
    exists: true,
    ports: [],
    loadBalancer: 'round-robin',
    version: '1',
    backends: legs.map((l) => ({ service: `${l.service}.sample.svc.cluster.local`, namespace: 'sample', weight: l.weight, exists: l.exists ?? true, endpoints: l.endpoints })),
  };
}

function table(resolver: StaticResolver, options: { maxRoutes?: number; random?: () => number } = {}) {
  return new RouteTable({ resolver, cluster: 'cluster2', metrics: new ProxyMetrics(() => undefined), ...options });
}

describe('routes', () => {
  it('says why it cannot route: no such service, no ready endpoints, missing backends', () => {
    const resolver = new StaticResolver({
      idle: destination([
        { service: 'helloworld-v1', weight: 1, endpoints: [endpoint('v1-a', false)] },
        { service: 'helloworld-gone', weight: 1, endpoints: [], exists: false },
      ]),
    });
    const routes = table(resolver);
    assert.deepEqual(routes.get('nosuch:80').pick(), { problem: 'no such service "nosuch:80"' });
    assert.deepEqual(routes.get('idle').pick(), {
      problem: 'no ready endpoints for helloworld.sample.svc.cluster.local (backends that do not exist: helloworld-gone.sample.svc.cluster.local)',
    });
  });

  it('routes only to ready endpoints of backends that can serve, and moves on when a backend is used up', () => {
    const resolver = new StaticResolver({
      helloworld: destination([
        { service: 'helloworld-v1', weight: 90, endpoints: [endpoint('v1-a'), endpoint('v1-bb', false)] },
        { service: 'helloworld-v2', weight: 10, endpoints: [endpoint('v2-ccc')] },
      ]),
    });
    const route = table(resolver, { random: () => 0 }).get('helloworld:5000');
    const first = route.pick();
    assert.ok('state' in first);
    assert.equal(first.state.target.endpoint.pod, 'v1-a');
    // v1-a failed for this request: v1 has nothing else ready, so v2 gets it.
    const second = route.pick(new Set([first.state]));
    assert.ok('state' in second);
    assert.equal(second.state.target.endpoint.pod, 'v2-ccc');
    assert.deepEqual(route.pick(new Set([first.state, second.state])), { problem: 'no endpoint of helloworld.sample.svc.cluster.local could be reached' });
  });

  it('labels each endpoint for metrics as Linkerd does, plus backend, pod and clusters', () => {
    const resolver = new StaticResolver({ helloworld: destination([{ service: 'helloworld-cluster1', weight: 1, endpoints: [endpoint('v1-a')] }]) });
    const pick = table(resolver).get('helloworld:5000').pick();
    assert.ok('state' in pick);
    assert.deepEqual(pick.state.target.labels, {
      direction: 'outbound',
      authority: 'helloworld:5000',
      tls: 'true',
      server_id: ID,
      dst_service: 'helloworld',
      dst_namespace: 'sample',
      dst_backend: 'helloworld-cluster1',
      dst_pod: 'v1-a',
      src_cluster: 'cluster2',
      dst_cluster: 'cluster1',
    });
  });

  it('keeps each endpoint’s balancer state across updates, and follows changes at once', () => {
    const resolver = new StaticResolver({ helloworld: destination([{ service: 'helloworld', weight: 1, endpoints: [endpoint('a')] }]) });
    const route = table(resolver).get('helloworld');
    const before = route.pick();
    assert.ok('state' in before);
    before.state.failures = 2;
    resolver.set('helloworld', destination([{ service: 'helloworld', weight: 1, endpoints: [endpoint('bb'), endpoint('a')] }]));
    const states = new Set<unknown>();
    for (let i = 0; i < 4; i++) {
      const pick = route.pick();
      assert.ok('state' in pick);
      states.add(pick.state);
    }
    assert.equal(states.size, 2);
    assert.ok(states.has(before.state), 'the surviving endpoint kept its state');
  });

  it('keeps routing with the last known state when discovery goes quiet (static stability)', () => {
    const resolver = new StaticResolver({ helloworld: destination([{ service: 'helloworld', weight: 1, endpoints: [endpoint('a')] }]) });
    const route = table(resolver).get('helloworld');
    resolver.close(); // no more updates will come
    const pick = route.pick();
    assert.ok('state' in pick);
    assert.equal(pick.state.target.endpoint.pod, 'a');
  });

  it('keeps at most maxRoutes names, dropping the least recently used', () => {
    const resolver = new StaticResolver();
    let watches = 0;
    let closed = 0;
    const counting = {
      watch: (name: string) => {
        watches++;
        const w = resolver.watch(name);
        return { ...w, close: () => void closed++ };
      },
      close: () => {},
    };
    const routes = new RouteTable({ resolver: counting, cluster: 'c', metrics: new ProxyMetrics(() => undefined), maxRoutes: 2 });
    routes.get('a');
    routes.get('b');
    routes.get('a');
    routes.get('c'); // b is the least recently used
    assert.equal(closed, 1);
    assert.deepEqual(routes.snapshot().map((r) => (r as { authority: string }).authority).sort(), ['a', 'c']);
    routes.get('a');
    assert.equal(watches, 3);
  });
});
