// `strait service list` and the apply-time checks of the annotations that order clusters, with real
// control planes: two clusters in two regions, connected, each running Cilium's userlist as a
// global service. The list shows both frontend names, each backend with its cluster, the gateway a
// remote one is reached through, its state (a stopped gateway's endpoints are `gateway down`), its
// tier and whether it is preferred; bad annotations are refused with exit 1 and change nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceListing } from '../../src/control/discovery/listing.js';
import { Mesh, waitFor } from '../support/cli.js';

const at = (cluster: string) => ['--cluster', cluster, '-n', 'song'];

/** The Service of Cilium's example with `annotations` added. */
function userlistSvc(annotations: Record<string, string>): string {
  const lines = Object.entries({ 'service.cilium.io/global': 'true', ...annotations }).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  return ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: userlist-svc', '  annotations:', ...lines, 'spec:', '  selector: {app: userlist}', '  ports: [{name: http, port: 80, targetPort: 8181}]', ''].join('\n');
}

describe('strait service list', { timeout: 120_000 }, () => {
  const mesh = new Mesh('strait-svc-list-');

  const listing = async (cluster = 'cluster1') => JSON.parse(await mesh.ok(['service', 'list', '--cluster', cluster, '-o', 'json'])) as ServiceListing;
  /** `cluster address state tier preferred` of each backend of the service's cluster-local frontend. */
  const backends = async () =>
    (await listing()).services.find((s) => s.name === 'userlist-svc')?.frontends[0]?.backends.map((b) => `${b.cluster} ${b.state} ${b.tier} ${b.preferred ? 'yes' : 'no'}`) ?? [];
  const resourceVersion = async () => (JSON.parse(await mesh.ok(['get', 'svc', 'userlist-svc', ...at('cluster1'), '-o', 'json'])) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1,cluster2', '--region', 'cluster1=eu-west', '--region', 'cluster2=us-east']);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    for (const cluster of ['cluster1', 'cluster2']) {
      await mesh.ok(['create', 'namespace', 'song', '--cluster', cluster]);
      await mesh.ok(['annotate', 'namespace', 'song', 'linkerd.io/inject=enabled', '--cluster', cluster]);
      await mesh.ok(['apply', '-f', 'examples/cilium/', ...at(cluster)]);
    }
    await waitFor('both clusters’ pods active in cluster1’s list', async () => (await backends()).join() === 'cluster1 active 0 yes,cluster2 active 0 yes', 30_000);
  });

  after(() => mesh.destroy());

  it('shows each frontend name and every backend: cluster, address (via the gateway), state, preferred, tier', async () => {
    const table = await mesh.ok(['service', 'list', '--cluster', 'cluster1']);
    const [header, ...rows] = table.trimEnd().split('\n');
    assert.match(header!, /^NAMESPACE\s+SERVICE\s+TYPE\s+FRONTEND\s+CLUSTER\s+BACKEND\s+STATE\s+PREFERRED\s+TIER$/);
    // Each cluster's addresses lie in the block it was given: 127.B.x.y, its gateway at 127.B.0.2.
    const block = (cluster: string) => mesh.blockPrefix(cluster).replaceAll('.', '\\.');
    assert.match(rows[0]!, new RegExp(`^song\\s+userlist-svc\\s+global\\s+userlist-svc\\.song\\.svc\\.cluster\\.local:80\\s+cluster1\\s+${block('cluster1')}\\d+\\.\\d+:8181\\s+active\\s+yes\\s+0$`));
    assert.match(rows[1]!, new RegExp(`^\\s+cluster2\\s+${block('cluster2')}\\d+\\.\\d+:8181 via ${block('cluster2')}0\\.2:4143\\s+active\\s+yes\\s+0$`));
    assert.match(rows[2]!, /^\s+userlist-svc\.song\.svc\.clusterset\.local:80\s+cluster1\s/);
    const json = await listing();
    assert.equal(json.cluster, 'cluster1');
    assert.equal(json.region, 'eu-west');
    const yaml = await mesh.ok(['service', 'list', '--cluster', 'cluster1', '-o', 'yaml']);
    assert.match(yaml, /^cluster: cluster1$/m);
    const bad = await mesh.run(['service', 'list', '-o', 'wide']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /-o wide: use json or yaml/);
  });

  it('refuses bad affinity and failover annotations with exit 1, changing nothing', async () => {
    const before = await resourceVersion();
    const refusals: [Record<string, string>, RegExp][] = [
      [{ 'service.cilium.io/affinity': 'nearest' }, /metadata\.annotations\["service\.cilium\.io\/affinity"\]: "nearest" is not an affinity: use one of local, remote, none/],
      [{ 'strait.dev/failover': 'cluster2,,cluster1' }, /metadata\.annotations\["strait\.dev\/failover"\]: "cluster2,,cluster1" has an empty entry/],
      [{ 'strait.dev/failover': 'cluster2,Cluster_1' }, /"Cluster_1" is not a cluster or region name/],
      [{ 'strait.dev/failover': 'cluster2,cluster2' }, /"cluster2" is named twice/],
      [{ 'strait.dev/failover': 'cluster2,cluster9' }, /cluster9 is neither a cluster nor a region of this mesh \(clusters: cluster1, cluster2; regions: eu-west, us-east\)/],
    ];
    for (const [annotations, message] of refusals) {
      const result = await mesh.run(['apply', '-f', '-', ...at('cluster1')], { input: userlistSvc(annotations) });
      assert.equal(result.code, 1, JSON.stringify(annotations));
      assert.match(result.stderr, /the manifests were refused; nothing was changed/);
      assert.match(result.stderr, /-: document 1 \(Service userlist-svc\): /);
      assert.match(result.stderr, message);
    }
    const annotate = await mesh.run(['annotate', 'svc', 'userlist-svc', ...at('cluster1'), 'strait.dev/failover=cluster9']);
    assert.equal(annotate.code, 1);
    assert.match(annotate.stderr, /cluster9 is neither a cluster nor a region of this mesh/);
    assert.equal(await resourceVersion(), before, 'nothing was changed');
  });

  it('tiers follow a failover naming a region, and a stopped gateway’s endpoints show as gateway down', async () => {
    await mesh.ok(['apply', '-f', '-', ...at('cluster1')], { input: userlistSvc({ 'strait.dev/failover': 'us-east' }) });
    await waitFor('cluster2 preferred', async () => (await backends()).join() === 'cluster2 active 0 yes,cluster1 active 1 no', 10_000);
    await mesh.ok(['gateway', 'stop', '--cluster', 'cluster2']);
    await waitFor('gateway down', async () => (await backends()).join() === 'cluster2 gateway down 0 no,cluster1 active 1 yes', 20_000);
    const table = await mesh.ok(['service', 'list', '--cluster', 'cluster1']);
    assert.match(table, /failover=us-east/);
    assert.match(table, /cluster2\s+\S+ via \S+\s+gateway down\s+no\s+0/);
    await mesh.ok(['gateway', 'start', '--cluster', 'cluster2']);
    await waitFor('gateway back', async () => (await backends()).join() === 'cluster2 active 0 yes,cluster1 active 1 no', 20_000);
  });
});
