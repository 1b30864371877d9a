import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ensureClusters, readMesh, type MeshFile } from '../../../src/runtime/home.js';
import {
  advertisedGatewayAddress,
  applySettings,
  defaultGatewayAddress,
  gatewayListenAddress,
  isLocalAddress,
  type SettingFlags,
} from '../../../src/runtime/settings.js';

function mesh(...names: string[]): MeshFile {
  return { trustDomain: 'cluster.local', clusters: names.map((name, index) => ({ name, index, createdAt: '2025-01-01T00:00:00Z' })) };
}

function applied(flags: SettingFlags, names: string[] = [], m = mesh('cluster1', 'cluster2')): MeshFile {
  applySettings(m, names, flags);
  return m;
}

describe('--gateway-address', () => {
  test('per cluster as cluster=host:port', () => {
    const m = applied({ gatewayAddress: ['cluster1=10.0.0.1:4143', 'cluster2=[fd00::2]:4143'] });
    assert.equal(m.clusters[0]!.gatewayAddress, '10.0.0.1:4143');
    assert.equal(m.clusters[1]!.gatewayAddress, '[fd00::2]:4143');
  });

  test('a bare address is for the one cluster the command names, or the only one there is', () => {
    assert.equal(applied({ gatewayAddress: ['10.0.0.9:443'] }, ['cluster2']).clusters[1]!.gatewayAddress, '10.0.0.9:443');
    assert.equal(applied({ gatewayAddress: ['10.0.0.9:443'] }, [], mesh('solo')).clusters[0]!.gatewayAddress, '10.0.0.9:443');
    assert.throws(() => applied({ gatewayAddress: ['10.0.0.9:443'] }), /one value cannot serve 2 clusters \(cluster1, cluster2\); give each its own, e\.g\. --gateway-address cluster1=/);
  });

  test('flags without it keep what is stored; cluster= goes back to the default', () => {
    const m = applied({ gatewayAddress: ['cluster1=10.0.0.1:4143'] });
    applySettings(m, ['cluster1'], { region: ['eu-west-1'] });
    assert.equal(m.clusters[0]!.gatewayAddress, '10.0.0.1:4143');
    applySettings(m, [], { gatewayAddress: ['cluster1='] });
    assert.equal(m.clusters[0]!.gatewayAddress, undefined);
    assert.equal(advertisedGatewayAddress(m.clusters[0]!), '127.20.0.2:4143');
  });

  test('refuses what is not a usable address, naming the flag and the reason', () => {
    const cases: [string, RegExp][] = [
      ['cluster1=10.0.0.1', /--gateway-address cluster1=10\.0\.0\.1: must be host:port, e\.g\./],
      ['cluster1=:4143', /must be host:port/],
      ['cluster1=10.0.0.1:4143:1', /must be host:port/],
      ['cluster1=10.0.0.1:0', /port 0 is out of range: it must be from 1 to 65535/],
      ['cluster1=10.0.0.1:65536', /port 65536 is out of range/],
      ['cluster1=[fd00::1]:99999', /port 99999 is out of range/],
      ['cluster1=0.0.0.0:4143', /0\.0\.0\.0 is the unspecified address/],
      ['cluster1=[::]:4143', /:: is the unspecified address/],
      ['cluster3=10.0.0.1:4143', /there is no cluster "cluster3" in --clusters or in the mesh \(cluster1, cluster2\)/],
      ['cluster1=127.21.0.2:4143', /127\.21\.0\.2 lies in 127\.21\.0\.0\/16, a block the local runtime gives/],
      ['cluster1=127.20.3.7:4143', /lies in 127\.20\.0\.0\/16/],
    ];
    for (const [given, message] of cases) {
      const m = mesh('cluster1', 'cluster2');
      const before = JSON.stringify(m);
      assert.throws(() => applySettings(m, [], { gatewayAddress: [given] }), message, given);
      assert.equal(JSON.stringify(m), before, `${given} changed nothing`);
    }
    // Its own default address, and any of 127.0.0.0/8 below the runtime's blocks, are fine.
    assert.equal(applied({ gatewayAddress: ['cluster1=127.20.0.2:8443'] }).clusters[0]!.gatewayAddress, '127.20.0.2:8443');
    assert.equal(applied({ gatewayAddress: ['cluster1=127.0.0.5:4143'] }).clusters[0]!.gatewayAddress, '127.0.0.5:4143');
  });

  test('no two clusters share a gateway address', () => {
    assert.throws(
      () => applied({ gatewayAddress: ['cluster1=10.0.0.1:4143', 'cluster2=10.0.0.1:4143'] }),
      /--gateway-address cluster2=10\.0\.0\.1:4143: 10\.0\.0\.1:4143 is already the gateway address of cluster1; every cluster needs its own/,
    );
    const m = applied({ gatewayAddress: ['cluster1=gw.example.com:4143'] });
    assert.throws(() => applySettings(m, [], { gatewayAddress: ['cluster2=GW.example.com:4143'] }), /already the gateway address of cluster1/);
    // The same host on another port is another address.
    applySettings(m, [], { gatewayAddress: ['cluster2=gw.example.com:4144'] });
    // Swapping two addresses in one command is fine.
    applySettings(m, [], { gatewayAddress: ['cluster1=gw.example.com:4144', 'cluster2=gw.example.com:4143'] });
    assert.deepEqual(m.clusters.map((c) => c.gatewayAddress), ['gw.example.com:4144', 'gw.example.com:4143']);
  });

  test('one cluster given two different values is refused', () => {
    assert.throws(() => applied({ gatewayAddress: ['cluster1=10.0.0.1:1', 'cluster1=10.0.0.1:2'] }), /cluster cluster1 is given both cluster1=10\.0\.0\.1:1 and cluster1=10\.0\.0\.1:2/);
  });
});

describe('where the gateway listens', () => {
  const entry = { name: 'cluster1', index: 3, createdAt: '' };
  const local = (host: string) => host === '10.199.0.1';

  test('on its default address unless told otherwise', () => {
    assert.deepEqual(gatewayListenAddress(entry, local), { host: '127.23.0.2', port: 4143 });
    assert.equal(advertisedGatewayAddress(entry), defaultGatewayAddress(3));
  });

  test('on the advertised address when it is one of this machine', () => {
    assert.deepEqual(gatewayListenAddress({ ...entry, gatewayAddress: '10.199.0.1:5143' }, local), { host: '10.199.0.1', port: 5143 });
  });

  test('on its default address when the advertised one is elsewhere (NAT, floating IP, a host name)', () => {
    for (const gatewayAddress of ['203.0.113.7:443', 'gw.example.com:4143']) {
      assert.deepEqual(gatewayListenAddress({ ...entry, gatewayAddress }, local), { host: '127.23.0.2', port: 4143 });
      assert.equal(advertisedGatewayAddress({ ...entry, gatewayAddress }), gatewayAddress);
    }
  });

  test('a stored address that is not host:port is an error naming mesh.json', () => {
    assert.throws(() => gatewayListenAddress({ ...entry, gatewayAddress: 'nonsense' }, local), /mesh\.json: cluster cluster1 has gatewayAddress "nonsense"/);
  });

  test("this machine's addresses: all of 127.0.0.0/8, and its interfaces'", () => {
    assert.ok(isLocalAddress('127.0.0.1'));
    assert.ok(isLocalAddress('127.99.1.2'));
    assert.ok(!isLocalAddress('203.0.113.77'), 'TEST-NET-3 is documentation only');
    assert.ok(!isLocalAddress('gw.example.com'));
  });
});

describe('--region and --sameness', () => {
  test('a region per cluster, or one for all the command names', () => {
    assert.deepEqual(applied({ region: ['us-east-1'] }).clusters.map((c) => c.region), ['us-east-1', 'us-east-1']);
    assert.deepEqual(applied({ region: ['us-east-1'] }, ['cluster2']).clusters.map((c) => c.region), [undefined, 'us-east-1']);
    const m = applied({ region: ['cluster1=eu-west-1', 'cluster2=us-east-1'] });
    assert.deepEqual(m.clusters.map((c) => c.region), ['eu-west-1', 'us-east-1']);
    applySettings(m, [], { region: ['cluster2='] });
    assert.deepEqual(m.clusters.map((c) => c.region), ['eu-west-1', undefined]);
  });

  test('a region must be a DNS-1123 label', () => {
    for (const bad of ['cluster1=US-East', 'cluster1=us_east', `cluster1=${'a'.repeat(64)}`, 'cluster1=-x']) {
      assert.throws(() => applied({ region: [bad] }), new RegExp(`--region ${bad}: the region must`), bad);
    }
    assert.throws(() => applied({ region: ['nowhere=us-east-1'] }), /--region nowhere=us-east-1: there is no cluster "nowhere"/);
  });

  test('sameness is set, turned off, and otherwise left alone', () => {
    const m = applied({ sameness: true });
    assert.equal(m.sameness, true);
    applySettings(m, [], {});
    assert.equal(m.sameness, true);
    applySettings(m, [], { sameness: false });
    assert.equal(m.sameness, false);
  });
});

describe('stored in mesh.json', () => {
  const home = mkdtempSync(join(tmpdir(), 'strait-settings-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  test('survive being read back, and a bad flag leaves the file as it was', () => {
    ensureClusters(home, ['cluster1', 'cluster2'], undefined, (m) =>
      applySettings(m, ['cluster1', 'cluster2'], { gatewayAddress: ['cluster1=10.0.0.1:4143'], region: ['cluster2=eu-west-1'], sameness: true }),
    );
    const read = readMesh(home);
    assert.equal(read.sameness, true);
    assert.equal(read.clusters.find((c) => c.name === 'cluster1')!.gatewayAddress, '10.0.0.1:4143');
    assert.equal(read.clusters.find((c) => c.name === 'cluster2')!.region, 'eu-west-1');

    const before = readFileSync(join(home, 'mesh.json'), 'utf8');
    assert.throws(() => ensureClusters(home, ['cluster3'], undefined, (m) => applySettings(m, ['cluster3'], { gatewayAddress: ['10.0.0.1:4143'] })), /already the gateway address of cluster1/);
    assert.equal(readFileSync(join(home, 'mesh.json'), 'utf8'), before);

    // A later run without the flags keeps them.
    ensureClusters(home, [], undefined, (m) => applySettings(m, [], {}));
    assert.equal(readFileSync(join(home, 'mesh.json'), 'utf8'), before);
  });
});
