import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod, TrafficSplit } from '../../../src/api/kinds.js';
import { PROXY_CONTAINER } from '../../../src/api/mesh.js';
import type { Resource } from '../../../src/api/types.js';
import { parseExposition } from '../../../src/control/metrics/exposition.js';
import { PodHistory, type TrafficWindow } from '../../../src/control/metrics/history.js';
import { podsOf, statRows, type StatInput, type StatRow } from '../../../src/control/metrics/summary.js';
import { ProxyMetrics } from '../../../src/proxy/metrics.js';
import { proxyText, times, type ProxySpec } from './fixtures.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const OLD_START = (T0 - 3_600_000) / 1000;
const NS = 'sample';
const CLUSTER = 'cluster2';

function deployment(name: string, uid: string): Resource {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS, uid } };
}

function pod(name: string, owner: Resource | undefined, opts: { meshed?: boolean; phase?: 'Running' | 'Pending' } = {}): Pod {
  const containers = [{ name: 'app', image: 'x' }, ...(opts.meshed === false ? [] : [{ name: PROXY_CONTAINER, image: 'strait/proxy' }])];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      ownerReferences: owner ? [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid!, controller: true }] : [],
    },
    spec: { containers },
    status: { phase: opts.phase ?? 'Running', podIP: '127.0.0.1' },
  };
}

const service = (name: string): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS } });

/** The window a collector would give for pods whose proxies counted `spec` during one minute. */
function windowOf(counted: Record<string, ProxySpec>): TrafficWindow {
  const pods = Object.entries(counted).map(([name, spec]) => {
    const h = new PodHistory();
    h.record(T0, parseExposition(proxyText({ startSeconds: OLD_START })));
    h.record(T0 + 60_000, parseExposition(proxyText({ startSeconds: OLD_START, ...spec })));
    return { namespace: NS, pod: name, address: '127.0.0.1', ...h.window(T0 + 60_000, 60_000) };
  });
  return { windowSeconds: 60, at: new Date(T0 + 60_000).toISOString(), pods };
}

const sleepOut = { direction: 'outbound', authority: 'helloworld:5000', dst_service: 'helloworld', dst_namespace: NS, src_cluster: CLUSTER };
const hwIn = { direction: 'inbound', authority: 'helloworld:5000', tls: 'true', client_id: 'spiffe://cluster.local/ns/sample/sa/sleep', src_cluster: CLUSTER, dst_cluster: CLUSTER };

describe('stat figures per resource', () => {
  const v2 = deployment('helloworld-v2', 'uid-v2');
  const sleep = deployment('sleep', 'uid-sleep');
  const pods = [
    pod('hw2-a', v2),
    pod('hw2-b', v2),
    pod('hw2-c', v2, { meshed: false }),
    pod('hw2-d', v2, { phase: 'Pending' }),
    pod('sleep-a', sleep),
  ];
  const traffic = windowOf({
    'sleep-a': {
      http: [
        { labels: { ...sleepOut, dst_backend: 'helloworld', dst_pod: 'hw2-a', dst_cluster: CLUSTER }, success: 30, latencies: times(30, 2) },
        { labels: { ...sleepOut, dst_backend: 'helloworld-cluster1', dst_pod: 'helloworld-v1-x', dst_cluster: 'cluster1' }, success: 27, failure: 3, latencies: times(30, 20) },
      ],
      tcp: [
        { labels: { direction: 'outbound', peer: 'dst', tls: 'true', dst_pod: 'hw2-a', dst_cluster: CLUSTER }, open: 1, readBytes: 6000, writeBytes: 3000 },
        { labels: { direction: 'outbound', peer: 'src', tls: 'no_identity' }, open: 5 },
      ],
    },
    'hw2-a': {
      http: [{ labels: hwIn, success: 20, latencies: times(20, 1) }],
      tcp: [
        { labels: { direction: 'inbound', peer: 'src', tls: 'true' }, open: 1 },
        { labels: { direction: 'inbound', peer: 'dst', tls: 'no_identity' }, open: 1 },
      ],
    },
    'hw2-b': { http: [{ labels: hwIn, success: 10 }, { labels: hwIn, status: 500, failure: 10 }] },
  });
  const input: StatInput = { cluster: CLUSTER, traffic, pods };
  const byName = (rows: StatRow[]) => Object.fromEntries(rows.map((r) => [r.leaf ? `${r.name}>${r.leaf}` : r.name, r]));

  it('deploy: inbound side of the deployment\'s pods; MESHED counts running pods with a proxy', () => {
    const rows = byName(statRows('deploy', [v2, sleep], input));
    const hw = rows['helloworld-v2']!;
    assert.deepEqual(hw.meshed, { meshed: 2, total: 3 });
    assert.equal(hw.figures?.responses, 40);
    assert.equal(hw.figures?.successRate, 0.75);
    assert.equal(hw.figures?.requestsPerSecond, 40 / 60);
    assert.equal(hw.figures?.tcpConnections, 1, 'only client connections, not the proxy\'s own to its app');
    // 20 observations at 1 ms (first bucket, from 0): p50 = 0.5; the 20 failures recorded no latency.
    assert.deepEqual(hw.figures?.latencyMs, { p50: 0.5, p95: 0.95, p99: 0.99 });
    assert.deepEqual(rows.sleep!.meshed, { meshed: 1, total: 1 });
    assert.equal(rows.sleep!.figures, undefined, 'nothing called sleep: no figures, printed as -');
  });

  it("deploy on Kubernetes: the pods of the deployment's ReplicaSets (named after it and their template hash)", () => {
    const v1 = deployment('helloworld-v1', 'uid-v1');
    const replicaSet = (name: string): Resource => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name, namespace: NS, uid: `uid-${name}` } });
    const hashed = (name: string, rs: string, hash: string): Pod => {
      const p = pod(name, replicaSet(rs));
      p.metadata.labels = { 'pod-template-hash': hash };
      return p;
    };
    const mine = [hashed('hw1-a', 'helloworld-v1-75fc4cb96d', '75fc4cb96d'), hashed('hw1-b', 'helloworld-v1-5d8f9', '5d8f9')];
    // Another deployment whose name begins with this one's, and a pod whose label does not match its ReplicaSet.
    const others = [hashed('hw1-canary-a', 'helloworld-v1-canary-6b7c', '6b7c'), hashed('stray', 'helloworld-v1-75fc4cb96d', 'ffff')];
    assert.deepEqual(podsOf(v1, [...mine, ...others]).map((p) => p.metadata.name), ['hw1-a', 'hw1-b']);
  });

  it('pod and ns: the same inbound figures per pod and per namespace', () => {
    const [b] = statRows('pod', [pods[1]!], input);
    assert.deepEqual(b!.meshed, { meshed: 1, total: 1 });
    assert.equal(b!.figures?.successRate, 0.5);
    assert.equal(b!.figures?.latencyMs, undefined, 'no latency observations: no quantiles');
    const [ns] = statRows('ns', [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }], input);
    assert.equal(ns!.namespace, undefined);
    assert.deepEqual(ns!.meshed, { meshed: 3, total: 4 });
    assert.equal(ns!.figures?.responses, 40);
  });

  it('svc: outbound side of every client, by the backend each call went to, so a mirror with no local pods shows its calls', () => {
    const rows = byName(statRows('svc', [service('helloworld'), service('helloworld-cluster1'), service('unused')], input));
    assert.equal(rows.helloworld!.meshed, undefined);
    assert.equal(rows.helloworld!.figures?.responses, 30);
    assert.equal(rows.helloworld!.figures?.successRate, 1);
    assert.equal(rows.helloworld!.figures?.requestsPerSecond, 0.5);
    // 30 observations at 2 ms, all in (1, 5]: p50 = 1 + 4 × 15/30.
    assert.equal(rows.helloworld!.figures?.latencyMs?.p50, 3);
    const mirror = rows['helloworld-cluster1']!;
    assert.equal(mirror.figures?.successRate, 0.9);
    assert.equal(mirror.figures?.latencyMs?.p50, 30);
    assert.equal(rows.unused!.figures, undefined);
  });

  it('trafficsplit: one row per backend with its weight and its own figures', () => {
    const split: TrafficSplit = {
      apiVersion: 'split.smi-spec.io/v1alpha1',
      kind: 'TrafficSplit',
      metadata: { name: 'helloworld', namespace: NS },
      spec: { service: 'helloworld', backends: [{ service: 'helloworld', weight: 0.5 }, { service: 'helloworld-cluster1', weight: 0.5 }, { service: 'helloworld-v3', weight: 0 }] },
    };
    const rows = statRows('trafficsplit', [split], input);
    assert.deepEqual(
      rows.map((r) => [r.name, r.apex, r.leaf, r.weight, r.figures?.responses]),
      [
        ['helloworld', 'helloworld', 'helloworld', 0.5, 30],
        ['helloworld', 'helloworld', 'helloworld-cluster1', 0.5, 30],
        ['helloworld', 'helloworld', 'helloworld-v3', 0, undefined],
      ],
    );
    assert.equal(rows[1]!.figures?.successRate, 0.9);
  });

  it('--from: only what the sender\'s pods counted towards the target (local pods only for workloads)', () => {
    const fromSleep = { ...input, fromPods: podsOf(sleep, pods) };
    const rows = byName(statRows('deploy', [v2, sleep], fromSleep));
    const hw = rows['helloworld-v2']!;
    assert.equal(hw.figures?.responses, 30, 'the calls that went to cluster1 are not helloworld-v2\'s');
    assert.equal(hw.figures?.successRate, 1);
    assert.equal(hw.figures?.tcpConnections, 1);
    assert.equal(hw.figures?.readBytesPerSecond, 100);
    assert.equal(hw.figures?.writeBytesPerSecond, 50);
    assert.equal(rows.sleep!.figures, undefined);
    const fromV2 = statRows('svc', [service('helloworld')], { ...input, fromPods: podsOf(v2, pods) });
    assert.equal(fromV2[0]!.figures, undefined, 'helloworld-v2 sent nothing');
  });

  it('attributes pods by their controller reference (and uid), not by name', () => {
    const other = deployment('helloworld-v2', 'uid-of-an-older-one');
    assert.deepEqual(podsOf(v2, pods).map((p) => p.metadata.name), ['hw2-a', 'hw2-b', 'hw2-c', 'hw2-d']);
    assert.deepEqual(podsOf(other, pods), []);
  });
});

describe('stat figures from the proxy\'s own exposition', () => {
  it('reads the labels the Strait proxy writes', async () => {
    const metrics = new ProxyMetrics(() => undefined);
    const inbound = metrics.httpSeries({ direction: 'inbound', authority: 'helloworld:5000', tls: 'true', client_id: 'spiffe://cluster.local/ns/sample/sa/sleep', src_cluster: CLUSTER, dst_cluster: CLUSTER });
    for (let i = 0; i < 9; i++) {
      inbound.requests++;
      inbound.latency(200, 4);
      inbound.response(200, false);
    }
    inbound.requests++;
    inbound.latency(503, 40);
    inbound.response(503, true);
    const h = new PodHistory();
    h.record(T0, parseExposition(await metrics.text()));
    const window = { windowSeconds: 60, at: new Date(T0).toISOString(), pods: [{ namespace: NS, pod: 'hw2-a', address: '127.0.0.1', ...h.window(T0, 60_000) }] };
    const v2 = deployment('helloworld-v2', 'uid-v2');
    // The proxy started within the window (it is this process), so its whole count is in it.
    const [row] = statRows('deploy', [v2], { cluster: CLUSTER, traffic: window, pods: [pod('hw2-a', v2)] });
    assert.equal(row!.figures?.responses, 10);
    assert.equal(row!.figures?.successRate, 0.9);
    assert.ok(row!.figures.latencyMs!.p50 > 3 && row!.figures.latencyMs!.p50 <= 4, `p50 ${row!.figures.latencyMs!.p50}`);
  });
});
