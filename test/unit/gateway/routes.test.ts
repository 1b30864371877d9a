import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticRouteTable } from '../../../src/gateway/routes.js';

test('a static table answers what was set, case-insensitively, until it is deleted', () => {
  const table = new StaticRouteTable([['probe.c1.gw.strait.mesh', { kind: 'probe' }]]);
  table.set('Web-0.Sample.C1.ep.strait.mesh', { kind: 'endpoint', host: '127.0.10.2', port: 4143 });
  assert.deepEqual(table.lookup('web-0.sample.c1.ep.strait.mesh'), { kind: 'endpoint', host: '127.0.10.2', port: 4143 });
  assert.deepEqual(table.lookup('probe.c1.gw.strait.mesh'), { kind: 'probe' });
  assert.equal(table.lookup('web-1.sample.c1.ep.strait.mesh'), undefined);
  assert.equal(table.size, 2);
  assert.equal(table.delete('WEB-0.sample.c1.ep.strait.mesh'), true);
  assert.equal(table.lookup('web-0.sample.c1.ep.strait.mesh'), undefined);
  assert.equal(table.delete('web-0.sample.c1.ep.strait.mesh'), false);
});

test('a route that cannot be used is refused and changes nothing', () => {
  const table = new StaticRouteTable();
  assert.throws(() => table.set('a.ns.c1.ep.strait.mesh', { kind: 'endpoint', host: '', port: 4143 }), /"a.ns.c1.ep.strait.mesh": host is empty/);
  assert.throws(() => table.set('a.ns.c1.ep.strait.mesh', { kind: 'endpoint', host: '127.0.0.1', port: 0 }), /port 0 is not a TCP port/);
  assert.throws(() => table.set('api.c1.gw.strait.mesh', { kind: 'mesh-api', host: 'a b', port: 1 }), /neither an IP address nor a host name/);
  assert.throws(() => table.set('', { kind: 'probe' }), /needs a server name/);
  assert.equal(table.size, 0);
});
