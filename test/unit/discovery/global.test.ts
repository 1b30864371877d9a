// Discovery of one service across clusters: global members merged into the local Service (their
// slices carry its name), a global ServiceImport that answers for a name with no Service here and
// whose ports win over the local ones, the clusterset names of the MCS API, each endpoint's tier by
// affinity, failover and region, and the views pushing every change of those to watching streams.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointSlice } from '../../../src/api/kinds/endpointslice.js';
import type { ServiceImport } from '../../../src/api/kinds.js';
import type { Resource } from '../../../src/api/types.js';
import type { ResourceCache } from '../../../src/control/discovery/cache.js';
import { computeDestination, type ClusterContext, type DestinationState } from '../../../src/control/discovery/compute.js';
import { listServices } from '../../../src/control/discovery/listing.js';
import { parseServiceName, type ServiceTarget } from '../../../src/control/discovery/names.js';
import { DiscoveryViews } from '../../../src/control/discovery/views.js';
import { LocalStore } from '../../../src/store/local.js';
import { addPod, CLUSTER, service, setReady, settle, startCache } from './fixtures.js';

const CTX: ClusterContext = { ...CLUSTER, region: 'eu-west' };
const LOCAL_FQDN = 'userlist.song.svc.cluster.local';
const CLUSTERSET_FQDN = 'userlist.song.svc.clusterset.local';
const GATEWAYS: Record<string, string> = { cluster2: '127.20.1.2:4143', cluster3: '127.20.2.2:4143' };

/** `userlist` in namespace song: port 80 → 8181, selecting app=userlist. */
function userlist(annotations: Record<string, string> = {}, ports = [{ name: 'http', port: 80, targetPort: 8181 }]) {
  return service('userlist', { namespace: 'song', selector: { app: 'userlist' }, ports, annotations });
}

/**
 * A member slice another cluster's link controller writes: `global` ones carry the cluster-local
 * service name too (so the local Service merges them), MCS-only ones only the clusterset's.
 */
function memberSlice(cluster: string, kind: 'global' | 'import', endpoints: { address: string; ready?: boolean; hostname?: string }[], options: { region?: string; port?: number } = {}): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `userlist-${cluster}-${kind}-0a1b2c3d`,
      namespace: 'song',
      labels: {
        ...(kind === 'global' ? { 'kubernetes.io/service-name': 'userlist' } : {}),
        'multicluster.kubernetes.io/service-name': 'userlist',
        'strait.dev/remote-cluster': cluster,
        'mirror.linkerd.io/cluster-name': cluster,
        'endpointslice.kubernetes.io/managed-by': 'strait-link-controller',
        ...(options.region ? { 'topology.kubernetes.io/region': options.region } : {}),
      },
      annotations: {
        'strait.dev/gateway': GATEWAYS[cluster]!,
        'strait.dev/endpoint-identities': JSON.stringify(
          Object.fromEntries(endpoints.map((e) => [e.address, { identity: 'spiffe://cluster.local/ns/song/sa/userlist', sni: `${e.address}.song.${cluster}.ep.strait.mesh` }])),
        ),
        'strait.dev/remote-service': 'song/userlist',
      },
    },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.address], conditions: { ready: e.ready ?? true }, ...(e.hostname ? { hostname: e.hostname } : {}) })),
    ports: [{ name: 'http', port: options.port ?? 8181, protocol: 'TCP' }],
  };
}

function serviceImport(options: { global?: boolean; ports?: { name?: string; port: number }[]; clusters?: string[]; type?: 'ClusterSetIP' | 'Headless' } = {}): ServiceImport {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceImport',
    metadata: {
      name: 'userlist',
      namespace: 'song',
      labels: { 'app.kubernetes.io/managed-by': 'strait' },
      ...(options.global ? { annotations: { 'strait.dev/global': 'true' } } : {}),
    },
    spec: { type: options.type ?? 'ClusterSetIP', ports: (options.ports ?? [{ name: 'http', port: 80 }]).map((p) => ({ protocol: 'TCP' as const, ...p })) },
    status: { clusters: (options.clusters ?? []).map((cluster) => ({ cluster })) },
  };
}

const serviceExport: Resource = { apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name: 'userlist', namespace: 'song' } };

const target = (name: string): ServiceTarget => {
  const parsed = parseServiceName(name, 'song');
  assert.ok('target' in parsed, JSON.stringify(parsed));
  return parsed.target;
};

/** `address:port cluster tier N`, sorted, for one backend (the only one unless named). */
function tiers(state: DestinationState, backend?: string): string[] {
  const endpoints = backend ? state.endpoints.get(backend) : [...state.endpoints.values()][0];
  return [...(endpoints?.values() ?? [])].map((e) => `${e.address}:${e.port} ${e.cluster} tier ${e.priority}`).sort();
}

describe('one service across clusters', () => {
  let store: LocalStore;
  let cache: ResourceCache;
  const compute = (name: string, ctx = CTX) => computeDestination(cache, target(name), ctx);

  beforeEach(async () => {
    store = LocalStore.memory();
    cache = await startCache(store);
    await addPod(store, 'userlist-a', { namespace: 'song', ip: '127.20.0.10', labels: { app: 'userlist' }, ports: [{ name: 'http', containerPort: 8181 }], serviceAccount: 'userlist' });
  });
  afterEach(async () => {
    cache.stop();
    await store.close();
  });

  it('a global member’s slices merge into the local Service of the same name, each endpoint through its gateway', async () => {
    await store.apply([userlist({ 'service.cilium.io/global': 'true' }), memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }, { address: '127.20.1.11', ready: false }])]);
    await settle();
    const state = compute('userlist:80');
    assert.deepEqual(tiers(state), ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0']);
    const remote = [...state.endpoints.get(LOCAL_FQDN)!.values()].find((e) => e.cluster === 'cluster2')!;
    assert.deepEqual([remote.proxy?.host, remote.proxy?.port, remote.proxy?.sni], ['127.20.1.2', 4143, '127.20.1.10.song.cluster2.ep.strait.mesh']);
    // An MCS-only member is not merged into the cluster-local name.
    await store.apply([memberSlice('cluster3', 'import', [{ address: '127.20.2.10' }])]);
    await settle();
    assert.deepEqual(tiers(compute('userlist:80')), ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0']);
  });

  it('a global ServiceImport answers for a name with no Service here: its ports, the global members’ endpoints', async () => {
    assert.equal(compute('userlist').info.exists, false);
    await store.apply([serviceImport({ global: true, clusters: ['cluster2'] }), memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }])]);
    await settle();
    const state = compute('userlist.song.svc.cluster.local');
    assert.equal(state.info.exists, true);
    assert.equal(state.info.service, LOCAL_FQDN);
    assert.deepEqual(state.info.ports.map((p) => [p.name, p.port]), [['http', 80]]);
    assert.deepEqual(state.info.backends.map((b) => [b.service, b.exists]), [[LOCAL_FQDN, true]]);
    assert.deepEqual(tiers(state), ['127.20.1.10:8181 cluster2 tier 0'], 'the local pod belongs to no Service here');
    // A ServiceImport that is not global (MCS only) does not make the cluster-local name resolve.
    await store.apply([serviceImport({ clusters: ['cluster2'] })]);
    await settle();
    assert.equal(compute('userlist').info.exists, false);
  });

  it('with a local Service and a global ServiceImport, the ServiceImport’s ports win (the oldest definition)', async () => {
    await store.apply([
      userlist({ 'service.cilium.io/global': 'true' }, [{ name: 'http', port: 8080, targetPort: 8181 }]),
      serviceImport({ global: true, ports: [{ name: 'http', port: 80 }], clusters: ['cluster1', 'cluster2'] }),
      memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }]),
    ]);
    await settle();
    const state = compute('userlist:80');
    assert.deepEqual(state.info.ports.map((p) => [p.name, p.port]), [['http', 80]]);
    // The local pods are matched to the winning port by name, and reached on their own targetPort.
    assert.deepEqual(tiers(state), ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0']);
    assert.equal(compute('userlist:8080').info.exists, false, 'the losing definition’s port is not served');
  });

  it('<svc>.<ns>.svc.clusterset.local is the ServiceImport: every member, the local pods when this cluster takes part', async () => {
    await store.apply([userlist(), memberSlice('cluster2', 'import', [{ address: '127.20.1.10' }]), memberSlice('cluster3', 'global', [{ address: '127.20.2.10' }])]);
    await settle();
    assert.equal(compute(`${CLUSTERSET_FQDN}:80`).info.exists, false, 'no ServiceImport, no clusterset name');
    await store.apply([serviceImport({ clusters: ['cluster2', 'cluster3'] })]);
    await settle();
    let state = compute(`${CLUSTERSET_FQDN}:80`);
    assert.equal(state.info.service, CLUSTERSET_FQDN);
    assert.deepEqual(state.info.backends.map((b) => b.service), [CLUSTERSET_FQDN]);
    assert.deepEqual(tiers(state), ['127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 0'], 'the local Service is not exported: its pods are not members');
    assert.deepEqual(tiers(compute('userlist:80')), ['127.20.0.10:8181 cluster1 tier 0', '127.20.2.10:8181 cluster3 tier 0'], 'the cluster-local name is unchanged');
    await store.apply([serviceExport]);
    await settle();
    state = compute(`${CLUSTERSET_FQDN}:80`);
    assert.deepEqual(tiers(state), ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 0']);
  });

  it('<hostname>.<cluster>.<svc>.<ns>.svc.clusterset.local is that one endpoint', async () => {
    await store.apply([
      serviceImport({ type: 'Headless', ports: [], clusters: ['cluster2', 'cluster3'] }),
      memberSlice('cluster2', 'import', [{ address: '127.20.1.10', hostname: 'web-0' }, { address: '127.20.1.11', hostname: 'web-1' }]),
      memberSlice('cluster3', 'import', [{ address: '127.20.2.10', hostname: 'web-0' }]),
    ]);
    await settle();
    const state = compute(`web-0.cluster2.${CLUSTERSET_FQDN}:8181`);
    assert.equal(state.info.exists, true);
    assert.equal(state.info.service, `web-0.cluster2.${CLUSTERSET_FQDN}`);
    assert.deepEqual(tiers(state), ['127.20.1.10:8181 cluster2 tier 0']);
    assert.deepEqual(tiers(compute(`web-0.cluster3.${CLUSTERSET_FQDN}:8181`)), ['127.20.2.10:8181 cluster3 tier 0']);
    assert.deepEqual(tiers(compute(`web-9.cluster2.${CLUSTERSET_FQDN}:8181`)), []);
  });

  describe('tiers', () => {
    const members = () => [
      memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }], { region: 'eu-west' }),
      memberSlice('cluster3', 'global', [{ address: '127.20.2.10' }], { region: 'us-east' }),
    ];

    it('affinity local prefers this cluster, remote the others, none (or no annotation) balances over all', async () => {
      const cases: [Record<string, string>, string[]][] = [
        [{ 'service.cilium.io/affinity': 'local' }, ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 1', '127.20.2.10:8181 cluster3 tier 1']],
        [{ 'service.cilium.io/affinity': 'remote' }, ['127.20.0.10:8181 cluster1 tier 1', '127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 0']],
        [{ 'service.cilium.io/affinity': 'none' }, ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 0']],
        [{}, ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 0']],
      ];
      await store.apply(members());
      for (const [annotations, expected] of cases) {
        await store.apply([userlist({ 'service.cilium.io/global': 'true', ...annotations })]);
        await settle();
        assert.deepEqual(tiers(compute('userlist:80')), expected, JSON.stringify(annotations));
      }
    });

    it('failover orders clusters or regions; what it does not name comes last; it outranks affinity', async () => {
      await store.apply(members());
      const cases: [string, string[]][] = [
        ['cluster3,cluster2', ['127.20.0.10:8181 cluster1 tier 2', '127.20.1.10:8181 cluster2 tier 1', '127.20.2.10:8181 cluster3 tier 0']],
        // eu-west is this cluster's region and cluster2's: both are tier 0.
        ['eu-west', ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 1']],
        ['cluster3,eu-west', ['127.20.0.10:8181 cluster1 tier 1', '127.20.1.10:8181 cluster2 tier 1', '127.20.2.10:8181 cluster3 tier 0']],
        // The first entry naming an endpoint's cluster or region decides.
        ['us-east,cluster3', ['127.20.0.10:8181 cluster1 tier 2', '127.20.1.10:8181 cluster2 tier 2', '127.20.2.10:8181 cluster3 tier 0']],
      ];
      for (const [failover, expected] of cases) {
        await store.apply([userlist({ 'service.cilium.io/global': 'true', 'service.cilium.io/affinity': 'remote', 'strait.dev/failover': failover })]);
        await settle();
        assert.deepEqual(tiers(compute('userlist:80')), expected, failover);
      }
      // Without a region of its own, this cluster's endpoints are named by the cluster alone.
      assert.deepEqual(tiers(compute('userlist:80', CLUSTER)), ['127.20.0.10:8181 cluster1 tier 2', '127.20.1.10:8181 cluster2 tier 2', '127.20.2.10:8181 cluster3 tier 0']);
    });

    it('the clusterset name’s endpoints are tiered by the local Service’s annotations too', async () => {
      await store.apply([...members(), serviceImport({ global: true, clusters: ['cluster1', 'cluster2', 'cluster3'] }), userlist({ 'service.cilium.io/global': 'true', 'strait.dev/failover': 'cluster2' })]);
      await settle();
      assert.deepEqual(tiers(compute(`${CLUSTERSET_FQDN}:80`)), ['127.20.0.10:8181 cluster1 tier 1', '127.20.1.10:8181 cluster2 tier 0', '127.20.2.10:8181 cluster3 tier 1']);
    });
  });

  describe('pushed to watching streams', () => {
    let views: DiscoveryViews;

    beforeEach(async () => {
      cache.stop();
      cache = await startCache(store, (change) => views.onChange(change));
      views = new DiscoveryViews(cache, CTX);
    });

    function watch(name: string) {
      let updates = 0;
      const lease = views.watchDestination(target(name), () => updates++);
      return { view: lease.view, updates: () => updates };
    }
    const revisions = (state: DestinationState) => [...[...state.endpoints.values()][0]!.values()].map((e) => `${e.address} ${e.revision}`).sort();

    it('a Service annotation change re-tiers the endpoints under new revisions', async () => {
      await store.apply([userlist({ 'service.cilium.io/global': 'true' }), memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }])]);
      await settle();
      const w = watch('userlist:80');
      const before = revisions(w.view.state);
      await store.apply([userlist({ 'service.cilium.io/global': 'true', 'service.cilium.io/affinity': 'remote' })]);
      await settle();
      assert.equal(w.updates(), 1);
      assert.deepEqual(tiers(w.view.state), ['127.20.0.10:8181 cluster1 tier 1', '127.20.1.10:8181 cluster2 tier 0']);
      const after = revisions(w.view.state);
      assert.notEqual(after[0], before[0], 'the local endpoint changed tier: a new revision, so a resuming stream gets it');
      assert.equal(after[1], before[1], 'the remote one stayed in tier 0');
    });

    it('a ServiceImport appearing makes a name resolve; its member slices and a ServiceExport reach the clusterset view', async () => {
      await store.apply([userlist()]);
      await settle();
      const global = watch('unknown-here.song:80');
      const clusterset = watch(`${CLUSTERSET_FQDN}:80`);
      const local = watch('userlist:80');
      assert.equal(clusterset.view.state.info.exists, false);
      await store.apply([serviceImport({ clusters: ['cluster2'] })]);
      await settle();
      assert.equal(clusterset.updates(), 1);
      assert.equal(clusterset.view.state.info.exists, true);
      await store.apply([memberSlice('cluster2', 'import', [{ address: '127.20.1.10' }])]);
      await settle();
      assert.equal(clusterset.updates(), 2);
      assert.deepEqual(tiers(clusterset.view.state), ['127.20.1.10:8181 cluster2 tier 0']);
      assert.equal(local.updates(), 0, 'an MCS-only member does not touch the cluster-local name');
      await store.apply([serviceExport]);
      await settle();
      assert.equal(clusterset.updates(), 3);
      assert.deepEqual(tiers(clusterset.view.state), ['127.20.0.10:8181 cluster1 tier 0', '127.20.1.10:8181 cluster2 tier 0']);
      assert.equal(global.updates(), 0, 'views of other names hear nothing');
    });

    it('a global ServiceImport makes its cluster-local name resolve for a stream already watching it', async () => {
      const w = watch('userlist.song.svc.cluster.local:80');
      assert.equal(w.view.state.info.exists, false);
      await store.apply([serviceImport({ global: true, clusters: ['cluster2'] }), memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }])]);
      await settle();
      assert.ok(w.updates() >= 1);
      assert.equal(w.view.state.info.exists, true);
      assert.deepEqual(tiers(w.view.state), ['127.20.1.10:8181 cluster2 tier 0']);
    });
  });

  it('the service listing shows each frontend, every backend with its state, tier and whether it is preferred', async () => {
    await store.apply([
      userlist({ 'service.cilium.io/global': 'true', 'service.cilium.io/affinity': 'local' }),
      serviceImport({ global: true, clusters: ['cluster1', 'cluster2', 'cluster3'] }),
      memberSlice('cluster2', 'global', [{ address: '127.20.1.10' }, { address: '127.20.1.11', ready: false }]),
      memberSlice('cluster3', 'global', [{ address: '127.20.2.10', ready: false }]),
    ]);
    await addPod(store, 'userlist-b', { namespace: 'song', ip: '127.20.0.11', labels: { app: 'userlist' }, ports: [{ name: 'http', containerPort: 8181 }], ready: false });
    await settle();
    const listing = listServices(cache, CTX, { gatewayAlive: (cluster) => cluster !== 'cluster3' });
    assert.equal(listing.cluster, 'cluster1');
    assert.equal(listing.region, 'eu-west');
    const [listed] = listing.services;
    assert.deepEqual([listed?.namespace, listed?.name, listed?.type, listed?.preference], ['song', 'userlist', 'global', 'affinity=local']);
    assert.deepEqual(listed!.frontends.map((f) => f.name), [`${LOCAL_FQDN}:80`, `${CLUSTERSET_FQDN}:80`]);
    const rows = (i: number) => listed!.frontends[i]!.backends.map((b) => `${b.cluster} ${b.address}${b.via ? ` via ${b.via}` : ''} ${b.state} ${b.tier} ${b.preferred ? 'yes' : 'no'}`);
    const expected = [
      'cluster1 127.20.0.10:8181 active 0 yes',
      'cluster1 127.20.0.11:8181 unready 0 no',
      'cluster2 127.20.1.10:8181 via 127.20.1.2:4143 active 1 no',
      'cluster2 127.20.1.11:8181 via 127.20.1.2:4143 unready 1 no',
      'cluster3 127.20.2.10:8181 via 127.20.2.2:4143 gateway down 1 no',
    ];
    assert.deepEqual(rows(0), expected);
    assert.deepEqual(rows(1), expected);
    // With no local pod ready, the remote tier is the one in use.
    await setReady(store, 'userlist-a', '127.20.0.10', false, 'song');
    await settle();
    const now = listServices(cache, CTX).services[0]!.frontends[0]!.backends.filter((b) => b.preferred).map((b) => b.address);
    assert.deepEqual(now, ['127.20.1.10:8181']);
  });
});
