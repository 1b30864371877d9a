// Issue-level acceptance for the foundation: two clusters of real processes, the guides' YAML,
// scaling, a killed pod restarted, restart from the state directory, and a clean teardown.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listeningOn, Mesh, processesUnder, waitFor } from '../support/cli.js';

interface PodList {
  items: { metadata: { name: string; namespace: string }; status?: { phase?: string; podIP?: string; containerStatuses?: { ready?: boolean; restartCount?: number }[] } }[];
}


const running = (p: PodList['items'][number]) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready);

describe('local runtime: two clusters of real processes', () => {
  const mesh = new Mesh();
  const c1 = ['--cluster', 'cluster1'];
  const c2 = ['--cluster', 'cluster2'];

  async function pods(cluster: string[], ns = 'default', selector?: string): Promise<PodList['items']> {
    const args = ['get', 'pods', '-n', ns, ...cluster, ...(selector ? ['-l', selector] : [])];
    return (await mesh.json<PodList>(args)).items;
  }

  async function readyPods(cluster: string[], selector: string, count: number, ns = 'default'): Promise<PodList['items']> {
    return waitFor(`${count} ready pods ${selector}`, async () => {
      const list = await pods(cluster, ns, selector);
      return list.length === count && list.every(running) ? list : undefined;
    });
  }

  before(async () => {
    const out = await mesh.ok(['up', '--clusters', 'cluster1,cluster2']);
    assert.match(out, /cluster1\s+started/);
    assert.match(out, /cluster2\s+started/);
  });

  after(async () => {
    await mesh.destroy();
  });

  it('runs the Linkerd guide helloworld YAML unchanged and answers from the right version', async () => {
    const applied = await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster1.yaml', ...c1]);
    assert.match(applied, /service\/helloworld created/);
    assert.match(applied, /deployment.apps\/helloworld-v1 created/);
    const [hello] = await readyPods(c1, 'app=helloworld', 1);
    assert.match(hello!.metadata.name, /^helloworld-v1-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const table = await mesh.ok(['get', 'pods', ...c1]);
    assert.match(table, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    assert.match(table, /helloworld-v1-\S+\s+2\/2\s+Running\s+0/);

    await mesh.ok(['apply', '-f', 'examples/linkerd/sleep.yaml', ...c1]);
    await readyPods(c1, 'app=sleep', 1);
    const answer = await mesh.ok(['exec', 'deploy/sleep', ...c1, '--', 'curl', '-s', `http://${hello!.status!.podIP}:5000/hello`]);
    assert.equal(answer, `Hello version: v1, instance: ${hello!.metadata.name}\n`);
  });

  it("applies the Istio guide's bookinfo reviews parts by selector into namespace sample", async () => {
    await mesh.ok(['create', 'namespace', 'sample', ...c2]);
    for (const sel of ['service=reviews', 'account=reviews', 'app=reviews,version=v2']) {
      await mesh.ok(['-n', 'sample', 'apply', '-f', 'examples/istio/bookinfo.yaml', '-l', sel, ...c2]);
    }
    const svc = await mesh.ok(['get', 'svc', '-n', 'sample', ...c2]);
    assert.match(svc, /reviews\s+ClusterIP/);
    assert.doesNotMatch(svc, /productpage|ratings|details/);
    const [reviews] = await readyPods(c2, 'app=reviews', 1, 'sample');
    assert.match(reviews!.metadata.name, /^reviews-v2-/);
    await mesh.ok(['-n', 'sample', 'apply', '-f', 'examples/istio/sleep.yaml', ...c2]);
    await readyPods(c2, 'app=sleep', 1, 'sample');
    const body = await mesh.ok(['exec', '-n', 'sample', 'deploy/sleep', ...c2, '--', 'curl', '-s', `http://${reviews!.status!.podIP}:9080/reviews/1`]);
    const json = JSON.parse(body) as { podname: string };
    assert.equal(json.podname, reviews!.metadata.name);
  });

  it('scales up and down, each replica on its own loopback address', async () => {
    await mesh.ok(['scale', 'deploy/helloworld-v1', '--replicas', '3', ...c1]);
    const three = await readyPods(c1, 'app=helloworld', 3);
    const ips = new Set(three.map((p) => p.status!.podIP));
    assert.equal(ips.size, 3);
    const block = mesh.blockPrefix('cluster1');
    for (const ip of ips) assert.ok(ip!.startsWith(block), `${ip} lies in cluster1's block ${block}`);
    await mesh.ok(['scale', 'deploy', 'helloworld-v1', '--replicas', '1', ...c1]);
    await readyPods(c1, 'app=helloworld', 1);
    const deploy = await mesh.ok(['get', 'deploy', 'helloworld-v1', ...c1]);
    assert.match(deploy, /helloworld-v1\s+1\/1/);
  });

  it('restarts a pod whose process is killed', async () => {
    const [pod] = await readyPods(c1, 'app=helloworld', 1);
    const podDir = join(mesh.home, 'clusters', 'cluster1', 'pods', 'default', pod!.metadata.name);
    const pids = processesUnder(podDir);
    assert.ok(pids.length >= 1, `a process runs in ${podDir}`);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await waitFor('restartCount 1 and ready again', async () => {
      const [p] = await pods(c1, 'default', 'app=helloworld');
      return p && p.metadata.name === pod!.metadata.name && running(p) && (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined;
    });
  });

  it('shows logs, labels, annotations and describes with the fields it ignores', async () => {
    const logs = await mesh.ok(['logs', 'deploy/helloworld-v1', ...c1]);
    assert.match(logs, /helloworld v1 listening on 127\.\d+\.\d+\.\d+:5000/);
    assert.match(await mesh.ok(['label', 'svc', 'helloworld', 'tier=backend', ...c1]), /service\/helloworld labeled/);
    const svc = await mesh.json<{ metadata: { labels: Record<string, string> } }>(['get', 'svc', 'helloworld', ...c1]);
    assert.equal(svc.metadata.labels.tier, 'backend');
    const clash = await mesh.run(['label', 'svc/helloworld', 'tier=frontend', ...c1]);
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /already has a value \(backend\), and --overwrite is false/);
    await mesh.ok(['label', 'svc/helloworld', 'tier=frontend', '--overwrite', ...c1]);
    await mesh.ok(['label', 'svc/helloworld', 'tier-', ...c1]);
    assert.equal((await mesh.json<{ metadata: { labels: Record<string, string> } }>(['get', 'svc', 'helloworld', ...c1])).metadata.labels.tier, undefined);
    assert.match(await mesh.ok(['annotate', 'deploy', 'helloworld-v1', 'team=mesh', ...c1]), /deployment.apps\/helloworld-v1 annotated/);
    const described = await mesh.ok(['describe', 'deploy', 'helloworld-v1', ...c1]);
    assert.match(described, /Annotations:\s+team: mesh/);
    assert.match(described, /Ignored by the local runtime/);
    assert.match(described, /resources/);
    assert.match(described, /imagePullPolicy/);
    const yaml = await mesh.ok(['get', 'svc', '-A', '-o', 'yaml', ...c2]);
    assert.match(yaml, /kind: List/);
    assert.match(yaml, /name: reviews/);
    // What `get -o yaml` prints applies again, status and all, as with kubectl.
    const pod = await mesh.ok(['get', 'pods', '-l', 'app=helloworld', '-o', 'yaml', ...c1]);
    assert.match(await mesh.ok(['apply', '-f', '-', ...c1], { input: pod }), /unchanged|configured/);
  });

  it('refuses what it cannot run, unknown kinds and malformed YAML, changing nothing', async () => {
    const noImage = await mesh.run(['apply', '-f', '-', ...c1], {
      input: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: mystery}\nspec:\n  selector: {matchLabels: {app: m}}\n  template:\n    metadata: {labels: {app: m}}\n    spec: {containers: [{name: m, image: example.com/unknown:1}]}\n',
    });
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /example\.com\/unknown:1/);
    assert.equal((await mesh.run(['get', 'deploy', 'mystery', ...c1])).code, 1);
    const unknownKind = await mesh.run(['get', 'deploymnets', ...c1]);
    assert.equal(unknownKind.code, 2);
    assert.match(unknownKind.stderr, /did you mean "deployments"/);
    const malformed = await mesh.run(['apply', '-f', '-', ...c1], { input: 'apiVersion: v1\nkind: Service\nmetadata: {name: x\n' });
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /-: document 1.*line \d+/);
    const unknownField = await mesh.run(['apply', '-f', '-', ...c1], {
      input: 'apiVersion: v1\nkind: Service\nmetadata: {name: typo}\nspec: {prots: [{port: 80}]}\n',
    });
    assert.equal(unknownField.code, 1);
    assert.match(unknownField.stderr, /spec\.prots.*did you mean .?ports/);
  });

  it('deleting a Deployment stops its pods', async () => {
    await mesh.ok(['apply', '-f', '-', ...c1], {
      input: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: doomed}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: doomed}}\n  template:\n    metadata: {labels: {app: doomed}}\n    spec: {containers: [{name: web, image: strait/podinfo}]}\n',
    });
    const two = await readyPods(c1, 'app=doomed', 2);
    const dirs = two.map((p) => join(mesh.home, 'clusters', 'cluster1', 'pods', 'default', p.metadata.name));
    assert.ok(dirs.every((d) => processesUnder(d).length === 1));
    assert.match(await mesh.ok(['delete', 'deploy', 'doomed', ...c1]), /deployment.apps\/doomed deleted/);
    await waitFor('pods of doomed gone', async () => (await pods(c1, 'default', 'app=doomed')).length === 0 && dirs.every((d) => processesUnder(d).length === 0));
  });

  it('refuses a file whose 3rd of 4 documents is invalid, and applies nothing', async () => {
    const file = join(mesh.home, 'bad.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: v1\nkind: Service\nmetadata: {name: first}\nspec: {ports: [{port: 80}], selector: {app: first}}',
        'apiVersion: v1\nkind: Service\nmetadata: {name: second}\nspec: {ports: [{port: 80}], selector: {app: second}}',
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: third}\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: third}}\n  template:\n    metadata: {labels: {app: third}}\n    spec: {containers: [{name: c, image: curlimages/curl}]}',
        'apiVersion: v1\nkind: Service\nmetadata: {name: fourth}\nspec: {ports: [{port: 80}]}',
      ].join('\n---\n'),
    );
    const r = await mesh.run(['apply', '-f', file, ...c1]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml/);
    assert.match(r.stderr, /document 3/);
    assert.match(r.stderr, /spec\.replicas/);
    const svc = await mesh.run(['get', 'svc', 'first', ...c1]);
    assert.equal(svc.code, 1);
    assert.match(svc.stderr, /not found/);
  });

  it('gives clear errors for bad commands', async () => {
    const noCluster = await mesh.run(['get', 'pods', '--cluster', 'nope']);
    assert.equal(noCluster.code, 1);
    assert.match(noCluster.stderr, /cluster "nope" does not exist; known clusters: cluster1, cluster2/);
    const noCmd = await mesh.run(['exec', 'deploy/sleep', ...c1, '--', 'no-such-command-xyz']);
    assert.equal(noCmd.code, 1);
    assert.match(noCmd.stderr, /command "no-such-command-xyz" not found/);
    const usage = await mesh.run(['get']);
    assert.equal(usage.code, 2);
  });

  it('refuses `up` while another instance holds the state directory', async () => {
    writeFileSync(join(mesh.home, 'lock'), `${process.pid}\nstrait up\n`);
    try {
      const r = await mesh.run(['up']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /locked by another running instance \(process \d+/);
    } finally {
      (await import('node:fs')).unlinkSync(join(mesh.home, 'lock'));
    }
  });

  it('stops everything on down, brings it all back on up, and down twice is harmless', async () => {
    await mesh.ok(['down']);
    assert.deepEqual(mesh.processes(), []);
    assert.deepEqual(listeningOn([mesh.blockPrefix('cluster1'), mesh.blockPrefix('cluster2')]), []);
    const again = await mesh.ok(['down']);
    assert.match(again, /nothing was running/);

    const out = await mesh.ok(['up']);
    assert.match(out, /cluster1\s+started/);
    const [hello] = await readyPods(c1, 'app=helloworld', 1);
    const sleep = await readyPods(c1, 'app=sleep', 1);
    assert.ok(sleep.length === 1);
    const answer = await mesh.ok(['exec', 'deploy/sleep', ...c1, '--', 'curl', '-s', `http://${hello!.status!.podIP}:5000/hello`]);
    assert.match(answer, /^Hello version: v1, instance: helloworld-v1-/);
    await readyPods(c2, 'app=reviews', 1, 'sample');

    await mesh.ok(['down']);
    assert.deepEqual(mesh.processes(), []);
    assert.deepEqual(listeningOn([mesh.blockPrefix('cluster1'), mesh.blockPrefix('cluster2')]), []);
  });
});
