// Links between clusters, in process but over the real wire: each cluster's mesh API on its own TLS
// port behind a real SNI gateway, link controllers writing into real stores. Exports become mirrors
// (timed), unexports remove them, links both ways do not loop, a dead gateway takes endpoints out of
// rotation and its return puts them back, a lost watch resumes, and bad credentials and unreachable
// gateways are reported in the Link's status.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import type { Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ExportedServiceSchema, InfoResponseSchema, Mesh, WatchExportsResponseSchema } from '../../src/api/gen/strait/mesh/v1/mesh_pb.js';
import type { EndpointSlice } from '../../src/api/kinds/endpointslice.js';
import type { Link } from '../../src/api/kinds/strait.js';
import { linkResources } from '../../src/cli/link.js';
import { peerContextValues } from '../../src/control/discovery/server.js';
import { createControlPlaneServer } from '../../src/control/identity-service.js';
import { connectMeshApi } from '../../src/control/mesh-api/client.js';
import { mintLinkCredential } from '../../src/control/mesh-api/credentials.js';
import { trustAnchorFingerprints } from '../../src/control/mesh-api/server.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { generateTokenKey } from '../../src/identity/credentials.js';
import type { Store } from '../../src/store/store.js';
import { issueMaterial, meshPki, staticIdentity } from '../unit/identity/fixtures.js';
import { exportService, link, startClusters, TRUST_DOMAIN, until, type TestCluster } from './links-harness.js';

const running: TestCluster[] = [];
async function clusters(...names: string[]): Promise<TestCluster[]> {
  const started = await startClusters(names);
  running.push(...started);
  return started;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()));
});

const get = (store: Store, kind: string, name: string, namespace = 'sample') => store.get({ kind, namespace, name });
const linkOf = async (consumer: TestCluster, target: string) => (await consumer.store.get({ kind: 'Link', namespace: 'strait-system', name: target })) as Link | undefined;
const condition = (link: Link | undefined, type: string) => link?.status?.conditions.find((c) => c.type === type);
async function slicesOf(store: Store, service: string): Promise<EndpointSlice[]> {
  return (await store.list('EndpointSlice', { labelSelector: `kubernetes.io/service-name=${service}` })).items as unknown as EndpointSlice[];
}
const readiness = async (store: Store, service: string) => (await slicesOf(store, service)).flatMap((s) => s.endpoints.map((e) => e.conditions?.ready));

/** Resolves (with the ms it took from `since`) when an object of `kind` named `name` is ADDED, or DELETED. */
function nextEvent(store: Store, kind: string, name: string, type: 'ADDED' | 'DELETED', since: () => number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      watch.stop();
      reject(new Error(`no ${type} of ${kind} ${name} within 5 s`));
    }, 5000);
    const watch = store.watch({ kind }, (e) => {
      if (e.type !== type || e.object.metadata.name !== name) return;
      clearTimeout(timer);
      watch.stop();
      resolve(performance.now() - since());
    });
  });
}

describe('mirrors', () => {
  it('an exported service appears in the linked cluster within 1 s, follows its pods, and goes when unexported', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await link(c1!, c2!);
    await until('the link to sync', async () => condition(await linkOf(c2!, 'cluster1'), 'Synced')?.status === 'True');

    await exportService(c1!.store, 'helloworld', { labels: {}, pods: ['helloworld-v1-a'] });
    let exportedAt = 0;
    const appeared = nextEvent(c2!.store, 'Service', 'helloworld-cluster1', 'ADDED', () => exportedAt);
    exportedAt = performance.now();
    const service = (await get(c1!.store, 'Service', 'helloworld'))!;
    await c1!.store.apply([{ ...service, metadata: { ...service.metadata, resourceVersion: undefined, labels: { 'mirror.linkerd.io/exported': 'true' } } }]);
    const ms = await appeared;
    console.log(`# export to mirror in the linked cluster: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `the mirror took ${ms} ms`);

    await until('the endpoint', async () => (await readiness(c2!.store, 'helloworld-cluster1')).length === 1);
    const [slice] = await slicesOf(c2!.store, 'helloworld-cluster1');
    assert.equal(slice!.metadata.annotations!['strait.dev/gateway'], c1!.gatewayAddress);
    assert.match(slice!.metadata.annotations!['strait.dev/endpoint-identities']!, /helloworld-v1-a\.sample\.cluster1\.ep\.strait\.mesh/);

    await exportService(c1!.store, 'helloworld', { pods: ['helloworld-v1-a', 'helloworld-v1-b'] });
    await until('the second endpoint', async () => (await readiness(c2!.store, 'helloworld-cluster1')).length === 2);
    const status = await until('the status to count it', async () => {
      const l = await linkOf(c2!, 'cluster1');
      return l?.status?.services === 1 && l.status;
    });
    assert.equal(status.clusterId, c1!.multicluster.admin.info().clusterId);
    assert.match(condition({ status } as Link, 'Synced')!.message, /mirroring 1 service of cluster1/);

    let unexportedAt = 0;
    const gone = nextEvent(c2!.store, 'Service', 'helloworld-cluster1', 'DELETED', () => unexportedAt);
    unexportedAt = performance.now();
    const current = (await get(c1!.store, 'Service', 'helloworld'))!;
    await c1!.store.apply([{ ...current, metadata: { ...current.metadata, resourceVersion: undefined, labels: {} } }]);
    console.log(`# unexport to mirror removed: ${(await gone).toFixed(1)} ms`);
    await until('its slices to go', async () => (await slicesOf(c2!.store, 'helloworld-cluster1')).length === 0);
  });

  it('a headless service gets a mirror per instance, each reachable by its own name (S5)', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await exportService(c1!.store, 'redis', { headless: true, pods: ['redis-0', 'redis-1'], port: 6379, portName: 'redis' });
    await link(c1!, c2!);
    for (const name of ['redis-cluster1', 'redis-0-cluster1', 'redis-1-cluster1']) await until(name, () => get(c2!.store, 'Service', name));
    const instance = await until('the instance endpoint', async () => (await slicesOf(c2!.store, 'redis-0-cluster1'))[0]);
    assert.deepEqual(instance.endpoints.map((e) => [e.hostname, e.targetRef?.name]), [['redis-0', 'redis-0']]);
    // Redis speaks first, so the port stays opaque TCP in the mirror too.
    assert.deepEqual(instance.ports, [{ name: 'redis', port: 6379, protocol: 'TCP', appProtocol: 'tcp' }]);
  });

  it('links both ways do not loop: a mirror is never exported again', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await exportService(c1!.store, 'helloworld');
    await exportService(c2!.store, 'helloworld', { ip: () => '127.0.9.9' });
    await link(c1!, c2!);
    await link(c2!, c1!);
    await until('both mirrors', async () => (await get(c2!.store, 'Service', 'helloworld-cluster1')) && (await get(c1!.store, 'Service', 'helloworld-cluster2')));
    await until('both links to count their services', async () => (await linkOf(c1!, 'cluster2'))?.status?.services === 1 && (await linkOf(c2!, 'cluster1'))?.status?.services === 1);
    // Give any loop time to show.
    await new Promise((r) => setTimeout(r, 300));
    const names = async (c: TestCluster) => (await c.store.list('Service', { namespace: 'sample' })).items.map((s) => s.metadata.name).sort();
    assert.deepEqual(await names(c1!), ['helloworld', 'helloworld-cluster2']);
    assert.deepEqual(await names(c2!), ['helloworld', 'helloworld-cluster1']);
  });

  it('deleting the Link removes its mirrors', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await exportService(c1!.store, 'helloworld');
    await link(c1!, c2!);
    await until('the mirror', () => get(c2!.store, 'Service', 'helloworld-cluster1'));
    await c2!.store.delete([{ kind: 'Link', namespace: 'strait-system', name: 'cluster1' }]);
    await until('the mirrors to go', async () => (await c2!.store.list('Service', { namespace: 'sample' })).items.length === 0 && (await c2!.store.list('EndpointSlice')).items.length === 0);
  });
});

describe('gateway failure', () => {
  it('a dead gateway takes its endpoints out of rotation (the mirrors stay), and they come back with it; the watch resumes', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await exportService(c1!.store, 'helloworld', { pods: ['helloworld-v1-a', 'helloworld-v1-b'] });
    await link(c1!, c2!);
    await until('ready endpoints', async () => (await readiness(c2!.store, 'helloworld-cluster1')).join() === 'true,true');
    await until('the gateway to be alive', async () => (await linkOf(c2!, 'cluster1'))?.status?.gateway.alive === true);

    const killed = performance.now();
    await c1!.killGateway();
    await until('the endpoints to be taken out', async () => (await readiness(c2!.store, 'helloworld-cluster1')).join() === 'false,false', 5000);
    const outMs = performance.now() - killed;
    console.log(`# gateway killed to endpoints out of rotation: ${outMs.toFixed(0)} ms`);
    assert.ok(outMs < 3000, `took ${outMs} ms`);
    const down = await until('the status to say so', async () => {
      const l = await linkOf(c2!, 'cluster1');
      return l?.status?.gateway.alive === false && l;
    });
    assert.equal(condition(down, 'GatewayAlive')!.status, 'False');
    assert.match(condition(down, 'GatewayAlive')!.message, /3 probes failed in a row/);
    assert.ok(await get(c2!.store, 'Service', 'helloworld-cluster1'), 'the mirror stays');

    // While the link is down, cluster1 changes what it exports.
    await exportService(c1!.store, 'web');
    const hello = (await get(c1!.store, 'Service', 'helloworld'))!;
    await c1!.store.apply([{ ...hello, metadata: { ...hello.metadata, resourceVersion: undefined, labels: {} } }]);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(await get(c2!.store, 'Service', 'helloworld-cluster1'), 'nothing is removed while the link is down');

    const restarted = performance.now();
    await c1!.restartGateway();
    await until('the watch to resume with the changes', async () => !(await get(c2!.store, 'Service', 'helloworld-cluster1')) && (await get(c2!.store, 'Service', 'web-cluster1')), 10_000);
    await until('the endpoints back in rotation', async () => (await readiness(c2!.store, 'web-cluster1')).join() === 'true', 5000);
    console.log(`# gateway back to endpoints in rotation: ${(performance.now() - restarted).toFixed(0)} ms`);
    await until('the status to say alive', async () => (await linkOf(c2!, 'cluster1'))?.status?.gateway.alive === true);
  });

  it('a Link whose gateway does not answer says so in its status, and other links go on working', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await exportService(c1!.store, 'helloworld');
    await link(c1!, c2!);
    // cluster3's gateway address leads nowhere: a port that was just free.
    const nowhere = await freePort();
    const c3 = { ...c1!.multicluster.admin.info(), cluster: 'cluster3', clusterId: 'id-3', gatewayAddress: `127.0.0.1:${nowhere}` };
    await c2!.store.apply(linkResources(c3, c2!.multicluster.admin.info(), 'unused.token.value'));
    const broken = await until('the failure in the status', async () => {
      const l = await linkOf(c2!, 'cluster3');
      return condition(l, 'GatewayAlive')?.status === 'False' && l;
    });
    assert.equal(condition(broken, 'Synced')!.status, 'False');
    assert.equal(condition(broken, 'Synced')!.reason, 'GatewayUnreachable');
    assert.match(condition(broken, 'Synced')!.message, new RegExp(`cannot reach the mesh API of cluster3 through its gateway at 127.0.0.1:${nowhere}`));
    assert.match(broken.status!.gateway.lastError!, /ECONNREFUSED/);
    await until('the other link to work', () => get(c2!.store, 'Service', 'helloworld-cluster1'));
    assert.equal(condition(await linkOf(c2!, 'cluster1'), 'Synced')!.status, 'True');
  });
});

describe('credentials', () => {
  it('a revoked credential is refused and ends the open watch; the mirrors stay until the link is deleted', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    await exportService(c1!.store, 'helloworld');
    await link(c1!, c2!);
    await until('the mirror', () => get(c2!.store, 'Service', 'helloworld-cluster1'));
    assert.equal(c1!.multicluster.status().meshApi.streams, 1);
    await c1!.multicluster.admin.revokeCredentials({ consumer: 'cluster2' });
    const refused = await until('the refusal in the status', async () => {
      const synced = condition(await linkOf(c2!, 'cluster1'), 'Synced');
      return synced?.status === 'False' && synced.message.includes('revoked') && synced;
    });
    assert.equal(refused.reason, 'CredentialsRejected');
    assert.ok(await get(c2!.store, 'Service', 'helloworld-cluster1'));
    assert.equal(c1!.multicluster.status().meshApi.streams, 0);
  });

  it('an expired credential, and one minted by another cluster, are refused with the reason', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    // Long enough for the link to sync first on a loaded machine (a 1 s credential could expire before).
    const issued = await c1!.multicluster.admin.mintCredential({ consumer: 'cluster2', lifetimeMs: 4000 });
    await c2!.store.apply(linkResources(c1!.multicluster.admin.info(), c2!.multicluster.admin.info(), issued.token));
    await until('the link to sync', async () => condition(await linkOf(c2!, 'cluster1'), 'Synced')?.status === 'True', 4000);
    const expired = await until(
      'the expiry in the status',
      async () => {
        const synced = condition(await linkOf(c2!, 'cluster1'), 'Synced');
        return synced?.status === 'False' && synced;
      },
      10_000,
    );
    assert.match(expired.message, /expired/);

    const foreign = mintLinkCredential(generateTokenKey(), { cluster: 'cluster3', consumer: 'cluster2', id: '0123456789abcdef' });
    await c2!.store.apply(linkResources(c1!.multicluster.admin.info(), c2!.multicluster.admin.info(), foreign.token).slice(1, 2));
    await until('the other cluster named', async () => condition(await linkOf(c2!, 'cluster1'), 'Synced')?.message.includes('minted by cluster cluster3'));
  });

  it('the mesh API answers only control planes holding a credential, and only what they may read', async () => {
    const [c1, c2] = await clusters('cluster1', 'cluster2');
    const issued = await c1!.multicluster.admin.mintCredential({ consumer: 'cluster2' });
    const address = { host: '127.0.0.1', port: Number(c1!.gatewayAddress.split(':')[1]) };
    const call = async (token: string, identity = c2!.identity) => {
      const connection = connectMeshApi({ address, cluster: 'cluster1', trustDomain: TRUST_DOMAIN, identity, token });
      try {
        return await connection.client.info({}, { timeoutMs: 3000 });
      } finally {
        connection.close();
      }
    };
    const info = await call(issued.token);
    assert.equal(info.cluster, 'cluster1');
    assert.deepEqual(info.trustAnchorFingerprints, trustAnchorFingerprints(c1!.identity));
    await assert.rejects(call('garbage'), (err: ConnectError) => err.code === Code.Unauthenticated && /malformed/.test(err.rawMessage));
    // A workload's certificate of the mesh, even with a good credential, is not a control plane's.
    const { issuers } = await meshPki(['cluster2'], TRUST_DOMAIN);
    const workload = staticIdentity(await issueMaterial(new CertificateAuthority({ issuer: issuers.cluster2!, trustDomain: TRUST_DOMAIN }), { namespace: 'sample', serviceAccount: 'sleep' }));
    await assert.rejects(call(issued.token, workload));
  });
});

describe('a remote that does not play by the rules', () => {
  it('a mirror of a mirror sent by a remote is ignored, and said so', async () => {
    const [c2] = await clusters('cluster2');
    // A stand-in for cluster1 (presenting a certificate of the same mesh) whose mesh API sends a mirror among its exports.
    const fake = await hostileMeshApi(c2!.identity, [
      create(ExportedServiceSchema, { namespace: 'sample', name: 'good', revision: '1', mirror: true, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }),
      create(ExportedServiceSchema, { namespace: 'sample', name: 'helloworld-cluster2', revision: '1', mirror: true, labels: { 'mirror.linkerd.io/mirrored-service': 'true', 'mirror.linkerd.io/cluster-name': 'cluster2' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }),
    ]);
    try {
      const target = { ...c2!.multicluster.admin.info(), cluster: 'cluster1', clusterId: 'fake', gatewayAddress: `127.0.0.1:${fake.port}` };
      await c2!.store.apply(linkResources(target, c2!.multicluster.admin.info(), 'any.token.value'));
      await until('the good service', () => get(c2!.store, 'Service', 'good-cluster1'));
      const synced = await until('the ignored one counted', async () => {
        const c = condition(await linkOf(c2!, 'cluster1'), 'Synced');
        return c?.message.includes('1 ignored') && c;
      });
      assert.match(synced.message, /mirroring 1 service of cluster1 \(1 ignored/);
      assert.equal(await get(c2!.store, 'Service', 'helloworld-cluster2-cluster1'), undefined);
    } finally {
      await fake.close();
    }
  });
});

/** A mesh API that answers as cluster1 and streams `services`, checking nothing. */
async function hostileMeshApi(identity: TestCluster['identity'], services: ReturnType<typeof create<typeof ExportedServiceSchema>>[]) {
  const server = createControlPlaneServer(
    identity,
    (router: ConnectRouter) =>
      router.service(Mesh, {
        info: () => create(InfoResponseSchema, { cluster: 'cluster1', clusterId: 'fake', trustAnchorFingerprints: trustAnchorFingerprints(identity), trustDomain: TRUST_DOMAIN }),
        async *watchExports(_req, ctx) {
          yield create(WatchExportsResponseSchema, { services, synced: true });
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
          throw new ConnectError('closed', Code.Unavailable);
        },
      }),
    { clientCert: 'require', contextValues: peerContextValues },
  );
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => sessions.add(session));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const session of sessions) session.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
