import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  endpointRouteKey,
  formatRouteKey,
  meshApiRouteKey,
  parseRouteKey,
  probeRouteKey,
  RouteKeyError,
  type RouteKey,
} from '../../../src/api/route-keys.js';
import { isDns1123Subdomain } from '../../../src/api/names.js';

test('the three kinds of key, and parsing gives back what made them', () => {
  const keys: [RouteKey, string][] = [
    [{ kind: 'endpoint', cluster: 'cluster1', namespace: 'sample', pod: 'helloworld-v1-6f8c9d7b5-x2x7k' }, 'helloworld-v1-6f8c9d7b5-x2x7k.sample.cluster1.ep.strait.mesh'],
    [{ kind: 'endpoint', cluster: 'east', namespace: 'default', pod: 'web-0' }, 'web-0.default.east.ep.strait.mesh'],
    [{ kind: 'probe', cluster: 'cluster1' }, 'probe.cluster1.gw.strait.mesh'],
    [{ kind: 'mesh-api', cluster: 'cluster1' }, 'api.cluster1.gw.strait.mesh'],
  ];
  for (const [key, text] of keys) {
    assert.equal(formatRouteKey(key), text);
    assert.deepEqual(parseRouteKey(text), key);
    assert.ok(isDns1123Subdomain(text), `${text} is a DNS name`);
  }
  assert.equal(endpointRouteKey('c', 'ns', 'p'), 'p.ns.c.ep.strait.mesh');
  assert.equal(probeRouteKey('c'), 'probe.c.gw.strait.mesh');
  assert.equal(meshApiRouteKey('c'), 'api.c.gw.strait.mesh');
});

test('a pod name with dots stays one pod: the cluster and namespace are read from the right', () => {
  const key = endpointRouteKey('cluster1', 'sample', 'db.primary.0');
  assert.equal(key, 'db.primary.0.sample.cluster1.ep.strait.mesh');
  assert.deepEqual(parseRouteKey(key), { kind: 'endpoint', cluster: 'cluster1', namespace: 'sample', pod: 'db.primary.0' });
});

test('pods named like the gateway\'s own keys are still endpoints', () => {
  assert.deepEqual(parseRouteKey(endpointRouteKey('c1', 'probe', 'api')), { kind: 'endpoint', cluster: 'c1', namespace: 'probe', pod: 'api' });
  assert.equal(parseRouteKey('probe.c1.ep.strait.mesh'), undefined);
});

test('keys are case-insensitive, as host names are', () => {
  assert.deepEqual(parseRouteKey('PROBE.Cluster1.GW.Strait.Mesh'), { kind: 'probe', cluster: 'cluster1' });
});

test('names that are not keys', () => {
  for (const name of [
    '',
    '127.0.0.5',
    'helloworld.sample.svc.cluster.local',
    'strait.mesh',
    'ep.strait.mesh',
    'sample.cluster1.ep.strait.mesh',
    'x.sample.cluster1.ep.strait.mesh.',
    'x.sample.cluster1.ep.strait.mesh.evil.example',
    'web-0.sample.cluster_1.ep.strait.mesh',
    '-web.sample.cluster1.ep.strait.mesh',
    'x..sample.cluster1.ep.strait.mesh',
    'health.cluster1.gw.strait.mesh',
    'probe.gw.strait.mesh',
    'a.probe.cluster1.gw.strait.mesh',
    `${'a'.repeat(64)}.sample.cluster1.ep.strait.mesh`,
    `${'a.'.repeat(120)}sample.cluster1.ep.strait.mesh`,
  ]) {
    assert.equal(parseRouteKey(name), undefined, name);
  }
});

test('names that cannot make a key are refused with the name and the reason', () => {
  assert.throws(() => endpointRouteKey('Cluster1', 'sample', 'web-0'), (e) => e instanceof RouteKeyError && /cluster name "Cluster1"/.test(e.message));
  assert.throws(() => endpointRouteKey('cluster1', 'my.ns', 'web-0'), /namespace "my.ns" is not a valid DNS-1123 label/);
  assert.throws(() => endpointRouteKey('cluster1', 'sample', 'Web_0'), /pod name "Web_0"/);
  assert.throws(() => endpointRouteKey('cluster1', 'sample', 'a'.repeat(64)), /label longer than 63/);
  assert.throws(() => endpointRouteKey('cluster1', 'sample', `${'a'.repeat(60)}.`.repeat(4) + 'b'), /more than the 253/);
  assert.throws(() => probeRouteKey(''), /cluster name ""/);
});
