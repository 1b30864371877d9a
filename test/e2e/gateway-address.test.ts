// `strait up --gateway-address` with real control planes: a cluster behind NAT advertises its public
// address and keeps listening on its own; a cluster given an address of this machine listens there.
// Links carry the advertised address, a linked cluster's probes reach it, the setting survives
// down/up, and bad input changes nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { clusterAddresses } from '../../src/runtime/addresses.js';
import { readMesh } from '../../src/runtime/home.js';
import { isLocalAddress } from '../../src/runtime/settings.js';
import { listeningOn, Mesh, waitFor } from '../support/cli.js';

/** TEST-NET-3, standing for a NAT's public address: no interface of this machine has it (checked in before). */
const NAT_ADDRESS = '203.0.113.10:4143';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('strait up --gateway-address', () => {
  const mesh = new Mesh('strait-gwaddr-');
  let local: string;
  const defaultGateway = (cluster: string) => `${clusterAddresses(readMesh(mesh.home).clusters.find((c) => c.name === cluster)!.index).gateway}:4143`;
  const linkedAddress = async (from: string, to: string) => {
    const docs = parseAllDocuments(await mesh.ok(['link', '--from', from, '--to', to, '--print'])).map((d) => d.toJS() as { kind: string; spec?: { gatewayAddress?: string } });
    return docs.find((d) => d.kind === 'Link')!.spec!.gatewayAddress;
  };

  before(async () => {
    assert.ok(!isLocalAddress(NAT_ADDRESS.split(':')[0]!), `${NAT_ADDRESS} must not be an address of this machine`);
    local = `127.0.0.1:${await freePort()}`;
    const out = await mesh.ok(['up', '--clusters', 'cluster1,cluster2', '--gateway-address', `cluster1=${NAT_ADDRESS}`, '--gateway-address', `cluster2=${local}`, '--region', 'cluster1=us-east-1']);
    assert.match(out, new RegExp(`cluster1\\s+started\\s+\\d+\\s+${NAT_ADDRESS} \\(listening on ${defaultGateway('cluster1')}\\)\\s+us-east-1`));
    assert.match(out, new RegExp(`cluster2\\s+started\\s+\\d+\\s+${local}\\s+-`));
  });

  after(() => mesh.destroy());

  it('advertises the address in Links; listens on it only when it is this machine’s', async () => {
    assert.equal(await linkedAddress('cluster1', 'cluster2'), NAT_ADDRESS);
    assert.equal(await linkedAddress('cluster2', 'cluster1'), local);
    assert.deepEqual(listeningOn([defaultGateway('cluster1')]), [defaultGateway('cluster1')]);
    assert.deepEqual(listeningOn([local]), [local]);
    assert.deepEqual(listeningOn([defaultGateway('cluster2')]), [], 'cluster2 listens on its advertised address only');
    await mesh.ok(['link', '--from', 'cluster2', '--to', 'cluster1']);
    await waitFor('cluster2 alive at its advertised address', async () => /cluster2\s+True/.test(await mesh.ok(['gateways', '--cluster', 'cluster1'])), 15_000, 200);
  });

  it('refuses bad addresses with exit 1 and leaves mesh.json alone', async () => {
    const file = join(mesh.home, 'mesh.json');
    const before = readFileSync(file, 'utf8');
    const cases: [string[], RegExp][] = [
      [['--gateway-address', `cluster2=${NAT_ADDRESS}`], /--gateway-address cluster2=203\.0\.113\.10:4143: 203\.0\.113\.10:4143 is already the gateway address of cluster1/],
      [['--gateway-address', 'cluster2=10.0.0.1'], /must be host:port/],
      [['--gateway-address', 'cluster2=10.0.0.1:70000'], /port 70000 is out of range/],
      [['--gateway-address', 'cluster9=10.0.0.1:4143'], /there is no cluster "cluster9"/],
      [['--gateway-address', '10.0.0.1:4143'], /one value cannot serve 2 clusters/],
      [['--region', 'cluster2=Not_A_Label', '--sameness'], /--region cluster2=Not_A_Label: the region must be a lowercase RFC 1123 label/],
    ];
    for (const [args, message] of cases) {
      const r = await mesh.run(['up', ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(readFileSync(file, 'utf8'), before, args.join(' '));
    }
  });

  it('keeps the address across down and up, and says when a running cluster is not using a new one yet', async () => {
    await mesh.ok(['down']);
    const out = await mesh.ok(['up', '--sameness']);
    assert.match(out, new RegExp(`cluster1\\s+started\\s+\\d+\\s+${NAT_ADDRESS}`));
    assert.match(out, /namespace sameness: on/);
    assert.equal(await linkedAddress('cluster1', 'cluster2'), NAT_ADDRESS);
    assert.equal(readMesh(mesh.home).sameness, true);

    const cleared = await mesh.run(['up', '--gateway-address', 'cluster1=']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stderr, new RegExp(`cluster1 keeps its gateway address ${NAT_ADDRESS} until it restarts.*to use ${defaultGateway('cluster1').replaceAll('.', '\\.')}`));
    assert.equal(readMesh(mesh.home).clusters.find((c) => c.name === 'cluster1')!.gatewayAddress, undefined);
  });
});
