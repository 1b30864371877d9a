// The discovery service and the proxy's discovery client over real HTTP/2 with mTLS: certificates
// from a real mesh PKI, a real store, and the store changes a cluster sees (scaling, a
// TrafficSplit, a deleted service) arriving at the client as updates. The control plane goes away
// and comes back: the client keeps what it knew and resumes with a delta.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { connectNodeAdapter, createConnectTransport } from '@connectrpc/connect-node';
import { Discovery } from '../../src/api/gen/strait/discovery/v1/discovery_pb.js';
import { registerDiscovery, peerContextValues, type DiscoveryService } from '../../src/control/discovery/server.js';
import { controlPlaneIdentity } from '../../src/control/identity-service.js';
import { controlPlaneSpiffeId } from '../../src/identity/spiffe.js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import type { WorkloadIdentity } from '../../src/identity/client.js';
import type { Issuer } from '../../src/identity/pki.js';
import { anchorOnlyClientOptions, clientTlsOptions, followRotation, secureContextOptions, serverTlsOptions, type TlsIdentity, type TlsMaterial } from '../../src/identity/tls.js';
import { DiscoveryClient, type DiscoveryEvent } from '../../src/proxy/discovery-client.js';
import type { Destination, DestinationWatch } from '../../src/proxy/destinations.js';
import { LocalStore } from '../../src/store/local.js';
import { addPod, service, trafficSplit } from '../unit/discovery/fixtures.js';
import { issueMaterial, meshPki, staticIdentity } from '../unit/identity/fixtures.js';

const TRUST_DOMAIN = 'cluster.local';
const CONTROL_PLANE = controlPlaneSpiffeId(TRUST_DOMAIN);

interface RunningDiscovery {
  port: number;
  service: DiscoveryService;
  /** The SHA-256 fingerprints of the client certificates of the connections accepted so far, in order. */
  connections: (string | undefined)[];
  /** As a killed process would: every connection cut, nothing said. */
  kill(): Promise<void>;
}

/** The control plane's server as the cluster hosts it: HTTP/2 TLS, client certificates requested and passed to handlers. */
async function startDiscovery(store: LocalStore, identity: TlsIdentity, port = 0): Promise<RunningDiscovery> {
  let service!: DiscoveryService;
  const server = http2.createSecureServer(
    { ...serverTlsOptions(identity, { clientCert: 'request' }), allowHTTP1: true, noDelay: true },
    connectNodeAdapter({ routes: (router) => (service = registerDiscovery(router, { store, cluster: 'cluster1', trustDomain: TRUST_DOMAIN })), contextValues: peerContextValues }),
  );
  followRotation(server, identity);
  const sessions = new Set<http2.ServerHttp2Session>();
  const connections: (string | undefined)[] = [];
  server.on('session', (s: http2.ServerHttp2Session) => {
    connections.push((s.socket as TLSSocket).getPeerCertificate().fingerprint256);
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  await service.ready;
  return {
    port: (server.address() as AddressInfo).port,
    service,
    connections,
    async kill() {
      service.close();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves with the first update of `watch` that satisfies `test` (the current state counts). */
function until(watch: DestinationWatch, test: (d: Destination) => boolean, what: string, timeoutMs = 5_000): Promise<Destination> {
  return new Promise((resolve, reject) => {
    const now = watch.current();
    if (now && test(now)) return resolve(now);
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(watch.current())}`));
    }, timeoutMs);
    const off = watch.onUpdate((d) => {
      if (!test(d)) return;
      clearTimeout(timer);
      off();
      resolve(d);
    });
  });
}

const addresses = (d: Destination, backend = 0) => d.backends[backend]!.endpoints.map((e) => e.address).sort();

describe('discovery over HTTP/2 mTLS', () => {
  let store: LocalStore;
  let ca: CertificateAuthority;
  let issuer: Issuer;
  let cpIdentity: WorkloadIdentity;
  let running: RunningDiscovery;
  let sleep: TlsIdentity;
  let client: DiscoveryClient;
  const events: DiscoveryEvent[] = [];

  before(async () => {
    issuer = (await meshPki(['cluster1'])).issuers.cluster1!;
    ca = new CertificateAuthority({ issuer, trustDomain: TRUST_DOMAIN });
    cpIdentity = controlPlaneIdentity(ca);
    await cpIdentity.start();
    store = LocalStore.memory();
    await store.apply([service('helloworld')]);
    await addPod(store, 'helloworld-v1-a', { ip: '127.0.10.1', labels: { app: 'helloworld', version: 'v1' }, serviceAccount: 'helloworld' });
    await addPod(store, 'sleep-a', { ip: '127.0.10.9', labels: { app: 'sleep' }, serviceAccount: 'sleep', ports: [{ name: 'http', containerPort: 80 }] });
    running = await startDiscovery(store, cpIdentity);
    sleep = staticIdentity(await issueMaterial(ca, { namespace: 'sample', serviceAccount: 'sleep' }));
    client = new DiscoveryClient({
      controlPlane: { host: '127.0.0.1', port: running.port },
      controlPlaneIdentity: CONTROL_PLANE,
      identity: sleep,
      backoff: { initialMs: 50, maxMs: 200 },
      onEvent: (e) => events.push(e),
    });
  });

  after(async () => {
    client.close();
    await running.kill();
    cpIdentity.stop();
    await store.close();
  });

  it('resolves a short name in the caller’s namespace to its ready endpoints, with identities', async () => {
    const watch = client.watch('helloworld:5000');
    const d = await watch.ready(5_000);
    assert.equal(d.authority, 'helloworld:5000');
    assert.equal(d.exists, true);
    assert.equal(d.service, 'helloworld.sample.svc.cluster.local');
    assert.deepEqual(d.ports, [{ name: 'http', port: 5000, protocol: 'http' }]);
    assert.equal(d.loadBalancer, 'ewma');
    assert.deepEqual(d.backends.map((b) => [b.service, b.weight, b.exists]), [['helloworld.sample.svc.cluster.local', 1, true]]);
    assert.deepEqual(d.backends[0]!.endpoints, [
      {
        address: '127.0.10.1',
        port: 5000,
        identity: 'spiffe://cluster.local/ns/sample/sa/helloworld',
        proxy: { host: '127.0.10.1', port: 4143 },
        cluster: 'cluster1',
        pod: 'helloworld-v1-a',
        ready: true,
      },
    ]);
    watch.close();
  });

  it('every name form reaches the same service', async () => {
    for (const name of ['helloworld.sample:5000', 'helloworld.sample.svc:5000', 'helloworld.sample.svc.cluster.local:5000', 'helloworld']) {
      const watch = client.watch(name);
      const d = await watch.ready(5_000);
      assert.equal(d.service, 'helloworld.sample.svc.cluster.local', name);
      assert.deepEqual(addresses(d), ['127.0.10.1'], name);
      watch.close();
    }
  });

  it('pushes scaling, a TrafficSplit and a deleted service as they happen', async () => {
    const watch = client.watch('helloworld.sample.svc.cluster.local:5000');
    await watch.ready(5_000);

    await addPod(store, 'helloworld-v2-a', { ip: '127.0.10.2', labels: { app: 'helloworld', version: 'v2' } });
    await addPod(store, 'helloworld-v2-b', { ip: '127.0.10.3', labels: { app: 'helloworld', version: 'v2' } });
    await until(watch, (d) => addresses(d).length === 3, 'two more endpoints');

    await store.delete([{ kind: 'Pod', namespace: 'sample', name: 'helloworld-v2-b' }]);
    await until(watch, (d) => addresses(d).join() === '127.0.10.1,127.0.10.2', 'a scaled-down endpoint to go');

    await store.apply([
      service('helloworld-v1', { selector: { app: 'helloworld', version: 'v1' } }),
      service('helloworld-v2', { selector: { app: 'helloworld', version: 'v2' } }),
      trafficSplit('helloworld', 'helloworld', [{ service: 'helloworld-v1', weight: 80 }, { service: 'helloworld-v2', weight: 20 }, { service: 'helloworld-cluster1', weight: 0 }]),
    ]);
    const split = await until(watch, (d) => d.backends.length === 3, 'the split’s backends');
    assert.deepEqual(
      split.backends.map((b) => [b.service, b.weight, b.exists, b.endpoints.map((e) => e.address)]),
      [
        ['helloworld-v1.sample.svc.cluster.local', 80, true, ['127.0.10.1']],
        ['helloworld-v2.sample.svc.cluster.local', 20, true, ['127.0.10.2']],
        ['helloworld-cluster1.sample.svc.cluster.local', 0, false, []],
      ],
    );

    await store.delete([{ kind: 'Service', namespace: 'sample', name: 'helloworld' }]);
    const gone = await until(watch, (d) => !d.exists, 'the service to be gone');
    assert.deepEqual([gone.backends, gone.service], [[], undefined]);

    await store.delete([{ kind: 'TrafficSplit', namespace: 'sample', name: 'helloworld' }]);
    await store.apply([service('helloworld')]);
    await until(watch, (d) => d.exists && d.backends.length === 1 && addresses(d).length === 2, 'the service to be back');
    watch.close();
  });

  it('answers an unknown name with exists:false, and says so when the service appears', async () => {
    const watch = client.watch('reviews:9080');
    const d = await watch.ready(5_000);
    assert.equal(d.exists, false);
    assert.deepEqual(d.backends, []);
    await store.apply([service('reviews', { ports: [{ name: 'http', port: 9080, targetPort: 9080 }] })]);
    const appeared = await until(watch, (x) => x.exists, 'reviews to appear');
    assert.equal(appeared.service, 'reviews.sample.svc.cluster.local');
    watch.close();
  });

  it('a name that cannot be a service is answered exists:false at once, and not asked again', async () => {
    const before = events.length;
    const watch = client.watch('www.example.com:443');
    const d = await watch.ready(5_000);
    assert.equal(d.exists, false);
    const failures = events.slice(before).filter((e) => e.type === 'error' && e.name === 'www.example.com:443');
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.type === 'error' && failures[0]!.error.code, Code.InvalidArgument);
    assert.equal(failures[0]!.type === 'error' && failures[0]!.retryInMs, undefined);
    watch.close();
  });

  it('refuses callers without a workload certificate of this mesh', async () => {
    const baseUrl = `https://127.0.0.1:${running.port}`;
    const anchors = sleep.material().trustBundlePem;
    const anonymous = createClient(Discovery, createConnectTransport({ baseUrl, httpVersion: '2', nodeOptions: anchorOnlyClientOptions(anchors, CONTROL_PLANE) }));
    await assert.rejects(first(anonymous.resolve({ name: 'helloworld:5000' })), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unauthenticated);
      assert.match(err.rawMessage, /requires the caller’s workload certificate/);
      return true;
    });

    const { issuers } = await meshPki(['elsewhere']);
    const foreign = await issueMaterial(new CertificateAuthority({ issuer: issuers.elsewhere!, trustDomain: TRUST_DOMAIN }), { namespace: 'sample', serviceAccount: 'sleep' });
    const impostor = createClient(
      Discovery,
      createConnectTransport({ baseUrl, httpVersion: '2', nodeOptions: clientTlsOptions(staticIdentity({ ...foreign, trustBundlePem: anchors }), CONTROL_PLANE) }),
    );
    await assert.rejects(first(impostor.resolve({ name: 'helloworld:5000' })), { code: Code.Unauthenticated });

    // Same root, another trust domain: verified, but not a workload of this mesh.
    const otherDomain = await issueMaterial(new CertificateAuthority({ issuer, trustDomain: 'other.domain' }), { namespace: 'sample', serviceAccount: 'sleep' });
    const stranger = createClient(Discovery, createConnectTransport({ baseUrl, httpVersion: '2', nodeOptions: clientTlsOptions(staticIdentity(otherDomain), CONTROL_PLANE) }));
    await assert.rejects(first(stranger.resolve({ name: 'helloworld:5000' })), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.PermissionDenied);
      assert.equal(err.rawMessage, "the caller spiffe://other.domain/ns/sample/sa/sleep is not in this mesh's trust domain cluster.local");
      return true;
    });
  });

  it('gives a pod its inbound configuration, and only to that pod’s identity', async () => {
    const inbound = client.watchInbound('sleep-a');
    const config = await inbound.ready(5_000);
    assert.deepEqual(config.ports, [{ name: 'http', port: 80, protocol: 'http' }]);
    assert.deepEqual([config.pod, config.namespace, config.cluster], ['sleep-a', 'sample', 'cluster1']);
    await store.apply([service('sleep', { selector: { app: 'sleep' }, ports: [{ name: 'tcp-sleep', port: 80, targetPort: 80 }] })]);
    await new Promise<void>((resolve) => inbound.onUpdate((c) => c.ports[0]?.protocol === 'tcp' && resolve()));
    inbound.close();

    const raw = createClient(Discovery, createConnectTransport({ baseUrl: `https://127.0.0.1:${running.port}`, httpVersion: '2', nodeOptions: clientTlsOptions(sleep, CONTROL_PLANE) }));
    await assert.rejects(first(raw.inbound({ pod: 'helloworld-v1-a' })), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.PermissionDenied);
      assert.match(err.rawMessage, /spiffe:\/\/cluster.local\/ns\/sample\/sa\/sleep may not read the inbound configuration of pod sample\/helloworld-v1-a, which runs as service account helloworld/);
      return true;
    });
    await assert.rejects(first(raw.inbound({ pod: 'sleep-a', namespace: 'kube-system' })), { code: Code.PermissionDenied });
    await assert.rejects(first(raw.inbound({ pod: 'sleep-zzz' })), { code: Code.NotFound });
  });

  it('opens new streams over a new connection with the new certificate after a rotation', async () => {
    const first = await issueMaterial(ca, { namespace: 'sample', serviceAccount: 'reviews' });
    const rotating = rotatingIdentity(first);
    const rotated = new DiscoveryClient({ controlPlane: { host: '127.0.0.1', port: running.port }, controlPlaneIdentity: CONTROL_PLANE, identity: rotating });
    try {
      const before = running.connections.length;
      const one = rotated.watch('helloworld:5000');
      await one.ready(5_000);
      const second = await issueMaterial(ca, { namespace: 'sample', serviceAccount: 'reviews' });
      rotating.rotate(second);
      const two = rotated.watch('helloworld.sample:5000');
      await two.ready(5_000);
      assert.deepEqual(running.connections.slice(before), [fingerprint(first), fingerprint(second)]);
      assert.ok(one.current()?.exists, 'the stream on the first connection carries on');
    } finally {
      rotated.close();
    }
  });

  it('keeps the last state while the control plane is away, and resumes with a delta when it returns', async () => {
    const watch = client.watch('helloworld:5000');
    const known = await until(watch, (d) => d.exists && addresses(d).length === 2, 'the current endpoints');
    const port = running.port;
    const killedAt = events.length;
    await running.kill();
    await waitFor(() => events.slice(killedAt).some((e) => e.type === 'error' && e.name === 'helloworld:5000'), 'the client to notice');
    await new Promise((resolve) => setTimeout(resolve, 300)); // a few failed reconnects
    assert.deepEqual(watch.current(), known, 'static stability: nothing is cleared');

    // The cluster changes while its control plane is down.
    await addPod(store, 'helloworld-v1-b', { ip: '127.0.10.4', labels: { app: 'helloworld', version: 'v1' } });
    const mark = events.length;
    running = await startDiscovery(store, cpIdentity, port);
    const resumed = await until(watch, (d) => addresses(d).length === 3, 'the new endpoint after the restart');
    assert.deepEqual(addresses(resumed), ['127.0.10.1', '127.0.10.2', '127.0.10.4']);
    const updates = events.slice(mark).filter((e) => e.type === 'update' && e.name === 'helloworld:5000');
    assert.ok(updates.length >= 1);
    assert.ok(updates.every((e) => e.type === 'update' && !e.reset), 'the restarted control plane sent a delta, not a reset');
    watch.close();
  });
});

/** A workload identity whose certificate the test replaces, as WorkloadIdentity does on renewal. */
function rotatingIdentity(material: TlsMaterial): TlsIdentity & { rotate(next: TlsMaterial): void } {
  let current = { material, context: createSecureContext(secureContextOptions(material)) };
  const listeners = new Set<() => void>();
  return {
    material: () => current.material,
    secureContext: () => current.context,
    onRotate: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    rotate(next) {
      current = { material: next, context: createSecureContext(secureContextOptions(next)) };
      for (const listener of listeners) listener();
    },
  };
}

const fingerprint = (m: TlsMaterial) => new X509Certificate(m.certChainPem).fingerprint256;

/** The first message of a stream (or its error). */
async function first<T>(stream: AsyncIterable<T>): Promise<T> {
  for await (const message of stream) return message;
  throw new Error('the stream ended without a message');
}

async function waitFor(test: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
