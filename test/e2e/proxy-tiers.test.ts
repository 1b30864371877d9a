// Failover by tiers in the proxy, with real processes' parts: a control plane's discovery over
// HTTP/2 mTLS answering a global service whose `strait.dev/failover` prefers cluster1, then cluster2,
// then cluster3; two pods of each of cluster1 and cluster2 (cluster2's behind a real SNI gateway)
// and one of cluster3 behind its own. Once the client proxy has its answer the control plane is
// killed: from then on the proxy alone leaves dead pods, then a dead gateway (all its endpoints at
// once, after one failed connect), for the next tier, and comes back to each as it recovers. No call
// fails on the way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { pino } from 'pino';
import { registerDiscovery, peerContextValues, type DiscoveryService } from '../../src/control/discovery/server.js';
import type { EndpointSlice } from '../../src/api/kinds/endpointslice.js';
import { startGateway, type Gateway } from '../../src/gateway/router.js';
import { StaticRouteTable } from '../../src/gateway/routes.js';
import { serverTlsOptions, type TlsIdentity } from '../../src/identity/tls.js';
import { DiscoveryClient } from '../../src/proxy/discovery-client.js';
import { LocalStore } from '../../src/store/local.js';
import { addPod, service } from '../unit/discovery/fixtures.js';
import { eventually, scrape, spiffe, startApp, startProxy, TestPki, TRUST_DOMAIN, viaProxy, type TestApp, type TestProxy } from './proxy-harness.js';

const NET = '127.93.9';
const APP_PORT = 8181;
const IDENTITY = spiffe('userlist');
const quiet = pino({ level: 'silent' });

interface Pod {
  name: string;
  cluster: string;
  ip: string;
  app?: TestApp;
  proxy?: TestProxy;
}

/** The control plane's discovery as the cluster serves it; `kill` cuts every connection, as a killed process would. */
async function startDiscovery(store: LocalStore, identity: TlsIdentity): Promise<{ port: number; kill(): Promise<void> }> {
  let service!: DiscoveryService;
  const server = http2.createSecureServer(
    { ...serverTlsOptions(identity, { clientCert: 'request' }), allowHTTP1: true },
    connectNodeAdapter({ routes: (router) => (service = registerDiscovery(router, { store, cluster: 'cluster1', trustDomain: TRUST_DOMAIN })), contextValues: peerContextValues }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, `${NET}.100`, resolve));
  await service.ready;
  return {
    port: (server.address() as AddressInfo).port,
    async kill() {
      service.close();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A global member's slice as cluster1's link controller writes it for `cluster`: each endpoint through the gateway. */
function memberSlice(cluster: string, gateway: string, pods: Pod[]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `userlist-${cluster}-global-00000000`,
      namespace: 'sample',
      labels: { 'kubernetes.io/service-name': 'userlist', 'multicluster.kubernetes.io/service-name': 'userlist', 'strait.dev/remote-cluster': cluster },
      annotations: {
        'strait.dev/gateway': gateway,
        'strait.dev/endpoint-identities': JSON.stringify(Object.fromEntries(pods.map((p) => [p.ip, { identity: IDENTITY, sni: sniOf(p) }]))),
      },
    },
    addressType: 'IPv4',
    endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: p.name } })),
    ports: [{ name: 'http', port: APP_PORT, protocol: 'TCP' }],
  };
}

const sniOf = (pod: Pod) => `${pod.name}.sample.${pod.cluster}.ep.strait.mesh`;

describe('proxy tiers: failover and return without the control plane', { timeout: 90_000 }, () => {
  let pki: TestPki;
  let client: TestProxy;
  let discovery: DiscoveryClient;
  const gateways: Record<string, { gateway: Gateway; identity: TlsIdentity; routes: StaticRouteTable; host: string; port: number }> = {};
  const pods: Pod[] = [
    { name: 'userlist-c1-0', cluster: 'cluster1', ip: `${NET}.10` },
    { name: 'userlist-c1-1', cluster: 'cluster1', ip: `${NET}.11` },
    { name: 'userlist-c2-0', cluster: 'cluster2', ip: `${NET}.21` },
    { name: 'userlist-c2-1', cluster: 'cluster2', ip: `${NET}.22` },
    { name: 'userlist-c3-0', cluster: 'cluster3', ip: `${NET}.31` },
  ];
  const inCluster = (cluster: string) => pods.filter((p) => p.cluster === cluster);

  /** Starts a pod's app and proxy; a local (cluster1) pod's proxy takes mTLS on 4143, where discovery says it does. */
  async function startPod(pod: Pod): Promise<void> {
    pod.app = await startApp(pod.ip, (_req, res) => res.end(`${pod.cluster} ${pod.name}`), APP_PORT);
    pod.proxy = await startProxy({
      ip: pod.ip,
      pod: pod.name,
      cluster: pod.cluster,
      identity: await pki.identity('userlist', 'sample', pod.cluster),
      resolver: discovery,
      ...(pod.cluster === 'cluster1' ? { inboundPort: 4143 } : {}),
    });
    const gateway = gateways[pod.cluster];
    gateway?.routes.set(sniOf(pod), { kind: 'endpoint', host: pod.ip, port: pod.proxy.ports.inbound });
  }

  async function stopPod(pod: Pod): Promise<void> {
    await pod.proxy?.close();
    await pod.app?.close();
    pod.proxy = pod.app = undefined;
  }

  async function startClusterGateway(cluster: string, port = 0): Promise<void> {
    const known = gateways[cluster];
    const identity = known?.identity ?? (await pki.identity('gateway', 'strait-system', cluster));
    const routes = known?.routes ?? new StaticRouteTable();
    const host = `${NET}.${cluster === 'cluster2' ? 20 : 30}`;
    const gateway = await startGateway({ cluster, identity, routes, host, port, log: quiet });
    gateways[cluster] = { gateway, identity, routes, host, port: gateway.address.port };
  }

  /** `count` calls one after another; the answers by cluster, and every failure as it came. */
  async function calls(count: number): Promise<{ clusters: Record<string, number>; failures: string[] }> {
    const clusters: Record<string, number> = {};
    const failures: string[] = [];
    for (let i = 0; i < count; i++) {
      const answer = await viaProxy(client, `http://userlist:80/users/1`);
      if (answer.status !== 200) failures.push(`${answer.status} ${answer.body.trim()}`);
      else {
        const cluster = answer.body.split(' ')[0]!;
        clusters[cluster] = (clusters[cluster] ?? 0) + 1;
      }
    }
    return { clusters, failures };
  }

  /** Calls until one is answered by `cluster` (none may fail); how long that took. */
  async function untilAnsweredBy(cluster: string, ms: number): Promise<number> {
    const started = performance.now();
    await eventually(async () => {
      const { clusters, failures } = await calls(1);
      assert.deepEqual(failures, []);
      assert.ok(clusters[cluster], `answered by ${Object.keys(clusters).join(', ')}, not ${cluster}`);
    }, ms);
    return Math.round(performance.now() - started);
  }

  /** Waits until the client proxy holds no session to `host` (the peer's close has arrived). */
  async function sessionsClosed(host: string): Promise<void> {
    await eventually(async () => {
      const config = JSON.parse(await scrape(client, '/config')) as { sessions: { peer: string }[] };
      assert.deepEqual(config.sessions.filter((s) => s.peer.startsWith(`${host}:`)), []);
    });
  }

  before(async () => {
    pki = await TestPki.create(['cluster1', 'cluster2', 'cluster3']);
    await startClusterGateway('cluster2');
    await startClusterGateway('cluster3');
    const store = LocalStore.memory();
    await store.apply([
      service('userlist', {
        selector: { app: 'userlist' },
        ports: [{ name: 'http', port: 80, targetPort: APP_PORT }],
        annotations: { 'service.cilium.io/global': 'true', 'strait.dev/failover': 'cluster1,cluster2,cluster3' },
      }),
      memberSlice('cluster2', `${gateways.cluster2!.host}:${gateways.cluster2!.port}`, inCluster('cluster2')),
      memberSlice('cluster3', `${gateways.cluster3!.host}:${gateways.cluster3!.port}`, inCluster('cluster3')),
      {
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceImport',
        metadata: { name: 'userlist', namespace: 'sample', annotations: { 'strait.dev/global': 'true' } },
        spec: { type: 'ClusterSetIP', ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
        status: { clusters: [{ cluster: 'cluster1' }, { cluster: 'cluster2' }, { cluster: 'cluster3' }] },
      },
    ]);
    for (const pod of inCluster('cluster1')) {
      await addPod(store, pod.name, { ip: pod.ip, labels: { app: 'userlist' }, serviceAccount: 'userlist', ports: [{ name: 'http', containerPort: APP_PORT }] });
    }
    const controlPlane = await startDiscovery(store, await pki.identity('control-plane', 'strait-system', 'cluster1'));
    const sleep = await pki.identity('sleep');
    discovery = new DiscoveryClient({ controlPlane: { host: `${NET}.100`, port: controlPlane.port }, controlPlaneIdentity: spiffe('control-plane', 'strait-system'), identity: sleep, backoff: { initialMs: 50, maxMs: 200 } });
    client = await startProxy({ ip: `${NET}.1`, pod: 'sleep-7b9c8d6f5-vwxyz', identity: sleep, resolver: discovery });
    for (const pod of pods) await startPod(pod);
    // The proxy learns the name while the control plane is up, then the control plane dies.
    const first = await calls(1);
    assert.deepEqual(first.failures, []);
    // The clusterset name goes to discovery as the app wrote it; a name in no cluster's domain is no service.
    const clusterset = await viaProxy(client, 'http://userlist.sample.svc.clusterset.local/users/1');
    assert.equal(clusterset.status, 200);
    assert.match(clusterset.body, /^cluster1 /);
    const elsewhere = await viaProxy(client, 'http://userlist.sample.svc.example.org/users/1');
    assert.equal(elsewhere.status, 503);
    assert.match(elsewhere.body, /no such service "userlist\.sample\.svc\.example\.org"/);
    await controlPlane.kill();
  });

  after(async () => {
    await client?.close();
    discovery?.close();
    for (const pod of pods) await stopPod(pod);
    for (const { gateway } of Object.values(gateways)) await gateway.close();
  });

  it('sends everything to the most preferred tier, and /config shows each endpoint’s tier', async () => {
    const { clusters, failures } = await calls(20);
    assert.deepEqual(failures, []);
    assert.deepEqual(clusters, { cluster1: 20 });
    const config = JSON.parse(await scrape(client, '/config')) as { destinations: { authority: string; backends: { activeTier: number; endpoints: { address: string; priority: number; proxy?: { host: string } }[] }[] }[] };
    const backend = config.destinations.find((d) => d.authority === 'userlist:80')!.backends[0]!;
    assert.equal(backend.activeTier, 0);
    assert.deepEqual(
      backend.endpoints.map((e) => `${e.address} ${e.priority}`).sort(),
      pods.map((p) => `${p.ip} ${Number(p.cluster.slice(-1)) - 1}`).sort(),
    );
  });

  it('with the control plane dead, leaves tier 0 when its pods die and comes back when they return', async () => {
    for (const pod of inCluster('cluster1')) await stopPod(pod);
    for (const pod of inCluster('cluster1')) await sessionsClosed(pod.ip);
    const started = performance.now();
    const after = await calls(20);
    const failoverMs = Math.round(performance.now() - started);
    assert.deepEqual(after.failures, [], 'no call fails: a connect failure is retried on the next endpoint');
    assert.deepEqual(after.clusters, { cluster2: 20 });
    for (const pod of inCluster('cluster1')) await startPod(pod);
    const returnMs = await untilAnsweredBy('cluster1', 20_000);
    const { clusters, failures } = await calls(10);
    assert.deepEqual(failures, []);
    assert.deepEqual(clusters, { cluster1: 10 });
    console.log(`# tier 0 pods killed: 20 calls on tier 1 in ${failoverMs} ms; back on tier 0 ${returnMs} ms after the pods returned`);
  });

  it('leaves a dead gateway’s endpoints all at once, after one failed connect, and returns when it is back', async () => {
    for (const pod of inCluster('cluster1')) await stopPod(pod);
    await calls(2); // tier 0 is known dead again
    const { gateway, host, port } = gateways.cluster2!;
    await gateway.close();
    await sessionsClosed(host);
    const logsBefore = client.logs.length;
    const first = await calls(1);
    assert.deepEqual(first.failures, []);
    assert.deepEqual(first.clusters, { cluster3: 1 });
    const rest = await calls(20);
    assert.deepEqual(rest.failures, []);
    assert.deepEqual(rest.clusters, { cluster3: 20 });
    // One connect to the dead gateway put both of cluster2's endpoints out of rotation.
    const gatewayFailures = client.logs.slice(logsBefore).filter((l) => l.includes('connect failed') && l.includes(`${host}:${port}`));
    assert.equal(gatewayFailures.length, 1, gatewayFailures.join('\n'));
    const config = JSON.parse(await scrape(client, '/config')) as { destinations: { authority: string; backends: { activeTier: number; endpoints: { address: string; backoffMs: number }[] }[] }[] };
    const backend = config.destinations.find((d) => d.authority === 'userlist:80')!.backends[0]!;
    assert.equal(backend.activeTier, 2);
    for (const pod of inCluster('cluster2')) assert.ok(backend.endpoints.find((e) => e.address === pod.ip)!.backoffMs > 0, `${pod.name} is in back-off`);
    await startClusterGateway('cluster2', port);
    const returnMs = await untilAnsweredBy('cluster2', 20_000);
    console.log(`# cluster2's gateway back: on tier 1 again after ${returnMs} ms`);
  });
});
