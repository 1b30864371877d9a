import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterAddresses, MAX_CLUSTER_INDEX, PodAddressAllocator } from '../../../src/runtime/addresses.js';

test('each cluster has its own /16 block with fixed control-plane and gateway addresses', () => {
  assert.deepEqual(clusterAddresses(0), { cidr: '127.20.0.0/16', controlPlane: '127.20.0.1', gateway: '127.20.0.2', firstPod: '127.20.1.1' });
  assert.deepEqual(clusterAddresses(2), { cidr: '127.22.0.0/16', controlPlane: '127.22.0.1', gateway: '127.22.0.2', firstPod: '127.22.1.1' });
  assert.equal(clusterAddresses(MAX_CLUSTER_INDEX).cidr, '127.255.0.0/16');
});

test('a cluster index outside the loopback block is refused', () => {
  for (const bad of [-1, MAX_CLUSTER_INDEX + 1, 1.5, Number.NaN]) {
    assert.throws(() => clusterAddresses(bad), /cluster index .* out of range/);
    assert.throws(() => new PodAddressAllocator(bad), /out of range/);
  }
});

test('pod addresses start at .1.1, are distinct, and skip .0 and .255 host parts', () => {
  const allocator = new PodAddressAllocator(1);
  const first = Array.from({ length: 300 }, () => allocator.allocate());
  assert.equal(first[0], '127.21.1.1');
  assert.equal(first[1], '127.21.1.2');
  assert.equal(first[253], '127.21.1.254');
  assert.equal(first[254], '127.21.2.1');
  assert.equal(new Set(first).size, first.length);
  assert.ok(first.every((a) => /^127\.21\.\d+\.\d+$/.test(a) && !a.endsWith('.0') && !a.endsWith('.255')));
  assert.equal(allocator.size, 300);
});

test('a freed address is handed out again only after the others', () => {
  const allocator = new PodAddressAllocator(0);
  const a = allocator.allocate();
  const b = allocator.allocate();
  allocator.release(a);
  assert.equal(allocator.has(a), false);
  const c = allocator.allocate();
  assert.notEqual(c, a);
  assert.notEqual(c, b);
  assert.equal(allocator.size, 2);
});

test('seeded with the addresses of existing pods, it never hands one of them out', () => {
  const inUse = ['127.20.1.1', '127.20.1.3', '127.20.1.2'];
  const allocator = new PodAddressAllocator(0, inUse);
  const next = Array.from({ length: 5 }, () => allocator.allocate());
  for (const address of inUse) assert.ok(!next.includes(address), `${address} handed out again`);
  assert.equal(next[0], '127.20.1.4');
});

test('addresses outside the cluster’s pod range are not taken as reserved', () => {
  const allocator = new PodAddressAllocator(0);
  for (const foreign of ['127.21.1.1', '127.20.0.1', '127.20.0.2', '127.20.1.0', '127.20.1.255', '10.0.0.1', 'nonsense', '127.20.1.1.1']) {
    assert.equal(allocator.reserve(foreign), false, foreign);
  }
  assert.equal(allocator.size, 0);
  assert.equal(allocator.allocate(), '127.20.1.1');
});

test('when every address is taken, allocation fails with a clear error and wraps round once one is free', () => {
  const allocator = new PodAddressAllocator(3);
  const all: string[] = [];
  for (let i = 0; i < 255 * 254; i++) all.push(allocator.allocate());
  assert.equal(all.at(-1), '127.23.255.254');
  assert.throws(() => allocator.allocate(), /no free pod address left in 127\.23\.0\.0\/16/);
  allocator.release('127.23.7.7');
  assert.equal(allocator.allocate(), '127.23.7.7');
});
