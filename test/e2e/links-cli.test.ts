// `strait link`, `unlink` and `connect` between real control planes started by `strait up`: a
// labelled Service appears as <svc>-cluster1 in the other cluster within 1 s (timed), unexport
// removes it, unlink removes everything and the credential is refused afterwards, a Link to a
// gateway that does not answer says so, and bad requests are refused before anything is written.
//
// Each cluster's gateway is the real SNI gateway (src/gateway); until `strait up` starts one, this
// test starts it in process on the cluster's gateway address, routing the mesh API and probe keys.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { Code, ConnectError } from '@connectrpc/connect';
import { secretValue, type Secret } from '../../src/api/kinds/secret.js';
import type { Link } from '../../src/api/kinds/strait.js';
import type { Resource } from '../../src/api/types.js';
import { AdminClient } from '../../src/control/admin-client.js';
import { connectMeshApi } from '../../src/control/mesh-api/client.js';
import { MESH_API_PORT } from '../../src/control/mesh-api/server.js';
import { meshApiRouteKey, probeRouteKey } from '../../src/api/route-keys.js';
import { DEFAULT_GATEWAY_PORT, startGateway, type Gateway } from '../../src/gateway/router.js';
import { StaticRouteTable } from '../../src/gateway/routes.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import type { TlsIdentity } from '../../src/identity/tls.js';
import { clusterAddresses } from '../../src/runtime/addresses.js';
import { paths, readMesh } from '../../src/runtime/home.js';
import { loadClusterIssuer } from '../../src/runtime/pki.js';
import { issueMaterial, istioCacerts, staticIdentity, tempDir } from '../unit/identity/fixtures.js';
import { listeningOn, Mesh, waitFor } from '../support/cli.js';
import { quiet } from './links-harness.js';

const HELLOWORLD = `apiVersion: v1
kind: Service
metadata:
  name: helloworld
  namespace: sample
  labels: {app: helloworld}
spec:
  ports: [{port: 5000, name: http}]
  selector: {app: helloworld}
`;

/** An identity issued by a cluster's own issuer in the state directory, as its control plane or gateway holds. */
async function clusterIdentity(home: string, cluster: string, serviceAccount: string): Promise<TlsIdentity> {
  const ca = new CertificateAuthority({ issuer: await loadClusterIssuer(home, cluster), trustDomain: readMesh(home).trustDomain });
  return staticIdentity(await issueMaterial(ca, { namespace: 'strait-system', serviceAccount }));
}

/** The cluster's gateway, started here on its address unless the runtime already runs one there. */
async function ensureGateway(home: string, cluster: string): Promise<Gateway | undefined> {
  const entry = readMesh(home).clusters.find((c) => c.name === cluster)!;
  const { gateway, controlPlane } = clusterAddresses(entry.index);
  if (listeningOn([`${gateway}:${DEFAULT_GATEWAY_PORT}`]).length > 0) return undefined;
  const routes = new StaticRouteTable([
    [probeRouteKey(cluster), { kind: 'probe' }],
    [meshApiRouteKey(cluster), { kind: 'mesh-api', host: controlPlane, port: MESH_API_PORT }],
  ]);
  return startGateway({ cluster, identity: await clusterIdentity(home, cluster, 'gateway'), routes, host: gateway, port: DEFAULT_GATEWAY_PORT, log: quiet });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const condition = (link: Resource | undefined, type: string) => (link as Link | undefined)?.status?.conditions.find((c) => c.type === type);

describe('strait link between running clusters', () => {
  const mesh = new Mesh('strait-links-');
  const gateways: Gateway[] = [];
  let admin: Record<'cluster1' | 'cluster2', AdminClient>;
  const strait = (...args: string[]) => mesh.ok(args);

  before(async () => {
    await strait('up', '--clusters', 'cluster1,cluster2');
    admin = {
      cluster1: new AdminClient(paths.socket(mesh.home, 'cluster1'), 'cluster1'),
      cluster2: new AdminClient(paths.socket(mesh.home, 'cluster2'), 'cluster2'),
    };
    for (const cluster of ['cluster1', 'cluster2']) {
      await strait('create', 'namespace', 'sample', '--cluster', cluster);
      const gateway = await ensureGateway(mesh.home, cluster);
      if (gateway) gateways.push(gateway);
    }
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await mesh.destroy();
  });

  it('refuses a cluster linked to itself, the same cluster twice at connect, and an unknown cluster, writing nothing', async () => {
    const self = await mesh.run(['link', '--from', 'cluster1', '--to', 'cluster1']);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /cannot link cluster cluster1 to itself/);
    const twice = await mesh.run(['connect', 'cluster2', 'cluster2']);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /cannot link cluster cluster2 to itself/);
    const unknown = await mesh.run(['link', '--from', 'cluster1', '--to', 'cluster9']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /cluster "cluster9" does not exist/);
    const usage = await mesh.run(['link', '--from', 'cluster1']);
    assert.equal(usage.code, 2);
    assert.equal((await admin.cluster2.list('Link')).items.length, 0);
    assert.equal((await admin.cluster1.list('Secret', { namespace: 'strait-system' })).items.length, 0);
  });

  it('--print shows what would be written, with no credential minted', async () => {
    const out = await strait('link', '--from', 'cluster1', '--to', 'cluster2', '--print');
    const docs = parseAllDocuments(out).map((d) => d.toJS() as Resource);
    assert.deepEqual(docs.map((d) => d.kind), ['Namespace', 'Secret', 'Link']);
    const info = await admin.cluster1.clusterInfo();
    assert.deepEqual((docs[2]!.spec as Link['spec'])!.targetClusterId, info.clusterId);
    assert.equal((docs[2]!.spec as Link['spec'])!.gatewayAddress, info.gatewayAddress);
    assert.equal((await admin.cluster1.list('Secret', { namespace: 'strait-system' })).items.length, 0, 'nothing minted');
    assert.equal((await admin.cluster2.list('Link')).items.length, 0, 'nothing applied');
  });

  it('link: an exported service is mirrored within 1 s, unexport removes it, unlink removes everything and revokes the credential', async () => {
    const linked = await strait('link', '--from', 'cluster1', '--to', 'cluster2');
    assert.match(linked, /cluster2 now mirrors the services cluster1 exports/);
    assert.match(linked, /link.strait.dev\/cluster1 created \(cluster2\)/);
    await waitFor('the link to sync', async () => condition(await admin.cluster2.get({ kind: 'Link', namespace: 'strait-system', name: 'cluster1' }), 'Synced')?.status === 'True');
    await waitFor('the gateway to be alive', async () => condition(await admin.cluster2.get({ kind: 'Link', namespace: 'strait-system', name: 'cluster1' }), 'GatewayAlive')?.status === 'True');

    await mesh.ok(['apply', '-f', '-', '--cluster', 'cluster1'], { input: HELLOWORLD });
    // The export, timed from the write that labels the service to the mirror in cluster2's store.
    const service = (await admin.cluster1.get({ kind: 'Service', namespace: 'sample', name: 'helloworld' }))!;
    const exportedAt = performance.now();
    await admin.cluster1.apply([{ ...service, metadata: { ...service.metadata, labels: { ...service.metadata.labels, 'mirror.linkerd.io/exported': 'true' } } }]);
    await waitFor('the mirror', () => admin.cluster2.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }), 5000, 5);
    const ms = performance.now() - exportedAt;
    console.log(`# strait up clusters: export to mirror in cluster2 in ${ms.toFixed(0)} ms`);
    assert.ok(ms < 1000, `the mirror took ${ms} ms`);
    assert.match(await strait('get', 'svc', '-n', 'sample', '--cluster', 'cluster2'), /^helloworld-cluster1\s/m);

    await strait('label', 'svc', 'helloworld', 'mirror.linkerd.io/exported-', '-n', 'sample', '--cluster', 'cluster1');
    await waitFor('the mirror to go', async () => !(await admin.cluster2.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' })), 5000);

    await strait('label', 'svc', 'helloworld', 'strait.dev/export=true', '-n', 'sample', '--cluster', 'cluster1');
    await waitFor('the mirror again', () => admin.cluster2.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }), 5000);
    const secret = (await admin.cluster2.get({ kind: 'Secret', namespace: 'strait-system', name: 'cluster-credentials-cluster1' })) as Secret;
    const token = secretValue(secret, 'token')!;

    const unlinked = await strait('unlink', '--from', 'cluster1', '--to', 'cluster2');
    assert.match(unlinked, /revoked credential [0-9a-f]{16} in cluster1/);
    assert.equal(await admin.cluster2.get({ kind: 'Link', namespace: 'strait-system', name: 'cluster1' }), undefined);
    assert.equal(await admin.cluster2.get({ kind: 'Secret', namespace: 'strait-system', name: 'cluster-credentials-cluster1' }), undefined);
    assert.deepEqual((await admin.cluster2.list('Service', { namespace: 'sample' })).items, []);
    assert.deepEqual((await admin.cluster2.list('EndpointSlice', { namespace: 'sample' })).items, []);
    assert.deepEqual((await admin.cluster1.list('Secret', { namespace: 'strait-system' })).items, []);

    // The credential cluster2 held opens nothing any more.
    const info = await admin.cluster1.clusterInfo();
    const [host, port] = info.gatewayAddress.split(':') as [string, string];
    const connection = connectMeshApi({ address: { host, port: Number(port) }, cluster: 'cluster1', trustDomain: info.trustDomain, identity: await clusterIdentity(mesh.home, 'cluster2', 'control-plane'), token });
    try {
      await assert.rejects(connection.client.info({}, { timeoutMs: 5000 }), (err: ConnectError) => err.code === Code.Unauthenticated && /revoked/.test(err.rawMessage));
    } finally {
      connection.close();
    }
    const again = await mesh.run(['unlink', '--from', 'cluster1', '--to', 'cluster2']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /there is no link from cluster1 to cluster2/);
  });

  it('a Link to a gateway address that does not answer shows the failure in its status', async () => {
    const port = await freePort();
    await strait('link', '--from', 'cluster2', '--to', 'cluster1', '--gateway-address', `127.0.0.1:${port}`);
    const link = await waitFor('the failure in the status', async () => {
      const l = await admin.cluster1.get({ kind: 'Link', namespace: 'strait-system', name: 'cluster2' });
      return condition(l, 'GatewayAlive')?.status === 'False' && l;
    });
    assert.equal(condition(link, 'Synced')?.reason, 'GatewayUnreachable');
    assert.match(condition(link, 'Synced')!.message, new RegExp(`through its gateway at 127.0.0.1:${port}: .*ECONNREFUSED`));
    assert.match(condition(link, 'GatewayAlive')!.message, /3 probes failed in a row/);
    await strait('unlink', '--from', 'cluster2', '--to', 'cluster1');
  });

  it('connect links both ways', async () => {
    const out = await strait('connect', 'cluster1', 'cluster2');
    assert.match(out, /cluster1 and cluster2 each mirror the services the other exports/);
    await mesh.ok(['apply', '-f', '-', '--cluster', 'cluster2'], { input: HELLOWORLD.replace('labels: {app: helloworld}', "labels: {app: helloworld, mirror.linkerd.io/exported: 'true'}") });
    await waitFor('cluster2’s service in cluster1', () => admin.cluster1.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster2' }), 5000);
    await waitFor('cluster1’s service in cluster2', () => admin.cluster2.get({ kind: 'Service', namespace: 'sample', name: 'helloworld-cluster1' }), 5000);
  });

  it('a cluster that is not running is refused', async () => {
    await strait('down');
    const result = await mesh.run(['link', '--from', 'cluster1', '--to', 'cluster2']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cluster cluster[12] is not running; start it with: strait up/);
  });
});

describe('clusters whose trust anchors differ', () => {
  const mesh = new Mesh('strait-links-anchors-');
  const pki = tempDir('strait-links-pki-');

  after(async () => {
    await mesh.destroy();
    pki.remove();
  });

  it('cannot be linked or connected; nothing is written', async () => {
    const one = istioCacerts(`${pki.dir}/one`);
    const two = istioCacerts(`${pki.dir}/two`);
    await mesh.ok(['up', '--clusters', 'cluster1,cluster2', '--cacerts', `cluster1=${one}`, '--cacerts', `cluster2=${two}`]);
    for (const args of [['link', '--from', 'cluster1', '--to', 'cluster2'], ['connect', 'cluster1', 'cluster2']]) {
      const result = await mesh.run(args);
      assert.equal(result.code, 1, args.join(' '));
      assert.match(result.stderr, /cannot link cluster1 to cluster2; nothing was changed/);
      assert.match(result.stderr, /cluster1 and cluster2 share no trust anchor \(cluster1: [0-9A-F:]{95}; cluster2: [0-9A-F:]{95}\)/);
    }
    const cluster1 = new AdminClient(paths.socket(mesh.home, 'cluster1'), 'cluster1');
    const cluster2 = new AdminClient(paths.socket(mesh.home, 'cluster2'), 'cluster2');
    assert.equal((await cluster1.list('Secret')).items.length + (await cluster2.list('Secret')).items.length, 0);
    assert.equal((await cluster1.list('Link')).items.length + (await cluster2.list('Link')).items.length, 0);
  });
});
