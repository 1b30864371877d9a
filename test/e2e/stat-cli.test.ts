// `strait stat` end to end through real control planes: pods whose `strait-proxy` container is a
// small process serving Prometheus text on <podIP>:4191 (what a proxy's admin port serves), the
// control plane's collector reading them, and the CLI's tables and JSON, across two clusters.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PROXY_CONTAINER, PROXY_PORTS } from '../../src/api/mesh.js';
import type { StatRow } from '../../src/control/metrics/summary.js';
import { paths } from '../../src/runtime/home.js';
import { proxyText, times, type ProxySpec } from '../unit/metrics/fixtures.js';
import { Mesh, waitFor } from '../support/cli.js';

/** Serves METRICS_TEXT, with its own start time, as a proxy's admin port does. */
const ADMIN_PORT_SCRIPT = `
const http = require('node:http');
const start = Date.now() / 1000;
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
  res.end('# TYPE process_start_time_seconds gauge\\nprocess_start_time_seconds ' + start + '\\n' + process.env.METRICS_TEXT);
}).listen(${PROXY_PORTS.admin}, process.env.POD_IP);
`;

function deployment(name: string, replicas: number, counted: ProxySpec): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'sample' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            { name: 'app', image: 'busybox', command: ['/bin/sleep', '3650d'] },
            { name: PROXY_CONTAINER, image: 'metrics-fixture', command: [process.execPath, '-e', ADMIN_PORT_SCRIPT], env: [{ name: 'METRICS_TEXT', value: proxyText(counted) }] },
          ],
        },
      },
    },
  };
}

const service = (name: string, selector?: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'sample' },
  spec: { ports: [{ name: 'http', port: 80 }], ...(selector ? { selector } : {}) },
});

const manifest = (...docs: object[]) => [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }, ...docs].map((d) => JSON.stringify(d)).join('\n---\n');

const inbound = { direction: 'inbound', authority: 'web.sample:80', tls: 'true', client_id: 'spiffe://cluster.local/ns/sample/sa/default' };
const toWeb = (cluster: string, backend: string, dstCluster: string) => ({
  direction: 'outbound',
  authority: 'web.sample:80',
  dst_service: 'web',
  dst_namespace: 'sample',
  dst_backend: backend,
  src_cluster: cluster,
  dst_cluster: dstCluster,
});

/** Per web pod: 100 responses, 90 of them successful, all in 3 ms; two client connections open. */
const WEB: ProxySpec = {
  http: [
    { labels: inbound, success: 90, latencies: times(90, 3) },
    { labels: inbound, status: 500, failure: 10, latencies: times(10, 3) },
  ],
  tcp: [
    { labels: { direction: 'inbound', peer: 'src', tls: 'true' }, open: 2 },
    { labels: { direction: 'inbound', peer: 'dst', tls: 'no_identity' }, open: 1 },
  ],
};

/** The client split its calls: 40 to local web in 30 ms, 40 to cluster2's mirror in 300 ms, half of which failed. */
const CLIENT: ProxySpec = {
  http: [
    { labels: toWeb('cluster1', 'web', 'cluster1'), success: 40, latencies: times(40, 30) },
    { labels: toWeb('cluster1', 'web-cluster2', 'cluster2'), success: 20, failure: 20, latencies: times(40, 300) },
  ],
};

describe('strait stat through real control planes', () => {
  const mesh = new Mesh('strait-stat-');
  const ns = ['-n', 'sample'];

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1,cluster2']);
    const split = {
      apiVersion: 'split.smi-spec.io/v1alpha1',
      kind: 'TrafficSplit',
      metadata: { name: 'web', namespace: 'sample' },
      spec: { service: 'web', backends: [{ service: 'web', weight: '500m' }, { service: 'web-cluster2', weight: '500m' }] },
    };
    await mesh.ok(['apply', '-f', '-', '--cluster', 'cluster1'], {
      input: manifest(service('web', { app: 'web' }), service('web-cluster2'), deployment('web', 2, WEB), deployment('client', 1, CLIENT), split),
    });
    await mesh.ok(['apply', '-f', '-', '--cluster', 'cluster2'], {
      input: manifest(service('web', { app: 'web' }), deployment('client', 1, { http: [{ labels: toWeb('cluster2', 'web', 'cluster2'), success: 7, latencies: times(7, 3) }] })),
    });
    // Until every fixture listens, a read fails and its figures are missing.
    for (const cluster of ['cluster1', 'cluster2']) {
      await waitFor(`figures of every client in ${cluster}`, async () => {
        const rows = await mesh.json<StatRow[]>(['stat', 'svc', 'web', ...ns, '--cluster', cluster, '--from', 'deploy/client']);
        return rows[0]?.figures !== undefined;
      });
    }
    await waitFor('figures of both web pods', async () => {
      const rows = await mesh.json<StatRow[]>(['stat', 'deploy', 'web', ...ns]);
      return rows[0]?.figures?.responses === 200;
    });
  });

  after(async () => {
    await mesh.destroy();
  });

  it('deploy: Linkerd\'s columns, inbound figures of the deployment\'s pods, - where nothing was counted', async () => {
    const out = await mesh.ok(['stat', 'deploy', ...ns]);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+MESHED\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+TCP_CONN$/);
    assert.match(out, /^client\s+1\/1\s+-\s+-\s+-\s+-\s+-\s+-$/m);
    assert.match(out, /^web\s+2\/2\s+90\.00%\s+\d+\.\drps\s+3ms\s+4\.8ms\s+5ms\s+4$/m);
    const [web] = await mesh.json<StatRow[]>(['stat', 'deploy/web', ...ns]);
    assert.equal(web!.cluster, 'cluster1');
    assert.deepEqual(web!.meshed, { meshed: 2, total: 2 });
    assert.equal(web!.figures?.successRate, 0.9);
    assert.ok(web!.figures.requestsPerSecond > 0);
  });

  it('svc: from the clients\' side, so the mirror-named service with no pods shows its calls', async () => {
    const out = await mesh.ok(['stat', 'svc', ...ns]);
    assert.match(out, /^web\s+-\s+100\.00%\s+\d+\.\drps\s+30ms\s+48ms\s+50ms\s+0$/m);
    assert.match(out, /^web-cluster2\s+-\s+50\.00%\s+\d+\.\drps\s+300ms\s+480ms\s+496ms\s+0$/m);
    const wide = await mesh.ok(['stat', 'svc', 'web', ...ns, '-o', 'wide']);
    assert.match(wide.split('\n')[0]!, /TCP_CONN\s+READ_BYTES\/SEC\s+WRITE_BYTES\/SEC$/);
  });

  it('trafficsplit: one row per backend with its weight', async () => {
    const out = await mesh.ok(['stat', 'ts', ...ns]);
    assert.match(out.split('\n')[0]!, /^NAME\s+APEX\s+LEAF\s+WEIGHT\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99$/);
    assert.match(out, /^web\s+web\s+web\s+0\.5\s+100\.00%/m);
    assert.match(out, /^web\s+web\s+web-cluster2\s+0\.5\s+50\.00%/m);
  });

  it('ns and pod, and --from narrowing to one sender', async () => {
    const [sample] = await mesh.json<StatRow[]>(['stat', 'ns', 'sample']);
    assert.deepEqual(sample!.meshed, { meshed: 3, total: 3 });
    assert.equal(sample!.figures?.responses, 200);
    const pods = await mesh.json<StatRow[]>(['stat', 'pod', ...ns]);
    assert.deepEqual(pods.filter((p) => p.figures?.responses === 100).length, 2);
    const fromWeb = await mesh.json<StatRow[]>(['stat', 'svc', 'web', ...ns, '--from', 'deploy/web']);
    assert.equal(fromWeb[0]!.figures, undefined, 'web sent nothing');
  });

  it('--all-clusters puts each cluster\'s view of a service side by side', async () => {
    const out = await mesh.ok(['stat', 'svc', ...ns, '--all-clusters']);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^CLUSTER\s+NAME\s+MESHED\s+SUCCESS/);
    assert.match(lines[1]!, /^cluster1\s+web\s+-\s+100\.00%/);
    assert.match(lines[2]!, /^cluster2\s+web\s+-\s+100\.00%\s+\d+\.\drps\s+3ms/);
    assert.match(lines[3]!, /^cluster1\s+web-cluster2\s+-\s+50\.00%/);
    const rows = await mesh.json<StatRow[]>(['stat', 'svc', 'web', ...ns, '--all-clusters']);
    assert.deepEqual(rows.map((r) => [r.cluster, r.figures?.responses]), [['cluster1', 40], ['cluster2', 7]]);
  });

  it('refuses bad input with a clear message and a usage exit code', async () => {
    const cases: [string[], number, RegExp][] = [
      [['stat', 'sa'], 2, /strait stat cannot show serviceaccounts; use one of: deploy, sts, pod, svc, trafficsplit, ns/],
      [['stat', 'deploy', '-t', 'soon'], 2, /--window "soon" is not a positive duration/],
      [['stat', 'deploy', '-t', '1h'], 2, /--window 1h: the window must be more than 0 and at most 600 seconds/],
      [['stat', 'deploy', '-o', 'yaml'], 2, /unknown output format "yaml"/],
      [['stat', 'deploy', '--from', 'svc/web'], 2, /--from must name a deployment, statefulset or pod/],
      [['stat', 'deploy', '--from', 'web'], 2, /--from "web" must be KIND\/NAME/],
      [['stat', 'deploy', '--all-clusters', '--cluster', 'cluster1'], 2, /cannot be combined/],
      [['stat', 'deploy', '-A', 'web'], 2, /cannot be named across all namespaces/],
      [['stat', 'deploy', 'nope', ...ns], 1, /deployments "nope" not found in namespace "sample" of cluster cluster1/],
      [['stat', 'deploy', ...ns, '--from', 'deploy/nope'], 1, /--from deploy\/nope: not found in namespace "sample" of cluster1/],
    ];
    const results = await Promise.all(cases.map(([args]) => mesh.run(args)));
    cases.forEach(([args, code, message], i) => {
      assert.equal(results[i]!.code, code, `strait ${args.join(' ')}: ${results[i]!.stderr}`);
      assert.match(results[i]!.stderr, message);
    });
  });

  it('--all-clusters still shows the clusters that answer when one is down, and exits 1', async () => {
    const pid = Number(readFileSync(paths.pid(mesh.home, 'cluster2'), 'utf8'));
    process.kill(pid, 'SIGTERM');
    await waitFor('cluster2 to stop', async () => (await mesh.run(['get', 'ns', '--cluster', 'cluster2'])).code !== 0);
    const r = await mesh.run(['stat', 'svc', ...ns, '--all-clusters']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cluster2: cluster cluster2 is not running/);
    assert.match(r.stdout, /^cluster1\s+web\s+-\s+100\.00%/m);
  });
});
