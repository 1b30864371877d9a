// `strait check [--multicluster]` against real clusters: two linked clusters running the Linkerd
// guide's manifests pass every check; a Link whose gateway does not answer, an orphaned mirror and a
// proxy of another version each fail the check that covers them, with what to do — and break
// nothing else.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Mesh, waitFor, type RunResult } from '../support/cli.js';

interface Pod {
  metadata: { name: string };
  status?: { phase?: string; containerStatuses?: { ready?: boolean }[] };
}

interface ChecksJson {
  cluster: string;
  ok: boolean;
  checks: { section: string; name: string; ok: boolean; message: string; hint?: string }[];
}

const c1 = ['--cluster', 'cluster1'];
const c2 = ['--cluster', 'cluster2'];

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The lines of one check in the text output: its √/× line and the indented lines under it. */
function block(output: string, name: string): string[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.slice(2) === name);
  assert.ok(start >= 0, `no check "${name}" in:\n${output}`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => !l.startsWith('    '));
  return [lines[start]!, ...rest.slice(0, end < 0 ? rest.length : end)];
}

describe('strait check', () => {
  const mesh = new Mesh();

  const readyPods = (cluster: string[], selector: string) =>
    waitFor(`ready ${selector}`, async () => {
      const { items } = await mesh.json<{ items: Pod[] }>(['get', 'pods', '-l', selector, ...cluster]);
      return items.length > 0 && items.every((p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready)) ? items : undefined;
    }, 30_000);

  /** Runs the check until it exits `code` (state settles over a few probes), and returns that run. */
  const checkUntil = (args: string[], code: number, also: (r: RunResult) => boolean = () => true) =>
    waitFor(`strait check ${args.join(' ')} to exit ${code}`, async () => {
      const r = await mesh.run(['check', ...args]);
      return r.code === code && also(r) ? r : undefined;
    }, 20_000, 250);

  before(async () => {
    await mesh.ok(['up', '--clusters', 'cluster1,cluster2']);
    await mesh.ok(['connect', 'cluster1', 'cluster2']);
    await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster1.yaml', ...c1]);
    await mesh.ok(['apply', '-f', 'examples/linkerd/helloworld-cluster2.yaml', ...c2]);
    await readyPods(c1, 'app=helloworld');
    await readyPods(c2, 'app=helloworld');
    await readyPods(c2, 'app=sleep');
  });

  after(() => mesh.destroy());

  it('passes every check on two linked clusters running the guide (S1), and -o json says the same', async () => {
    const started = Date.now();
    const multi = await checkUntil(['--multicluster', ...c2], 0);
    console.log(`# check --multicluster passed ${Date.now() - started} ms after the pods were ready`);
    const checkLines = multi.stdout.split('\n').filter((l) => /^[√×] /.test(l));
    assert.ok(checkLines.every((l) => l.startsWith('√ ')), multi.stdout);
    for (const name of ['control plane is running', 'issuer certificate is issued by the trust anchors', 'data plane proxies are ready', 'data plane and cli versions match',
      'Link resources are valid', 'remote cluster access credentials are valid', 'clusters share trust anchors', 'link controllers are running',
      'remote gateways are alive', 'all mirror services have endpoints', 'all mirror services are part of a Link']) {
      assert.ok(checkLines.includes(`√ ${name}`), `missing √ ${name}:\n${multi.stdout}`);
    }
    assert.match(block(multi.stdout, 'remote gateways are alive')[1]!, /^ {4}\* cluster1 \(latency p50 /);
    assert.match(multi.stdout, /\nStatus check results are √\n$/);

    const core = await mesh.run(['check']);
    assert.equal(core.code, 0, core.stdout);
    assert.doesNotMatch(core.stdout, /strait-multicluster|×/);
    assert.match(core.stdout, /cluster cluster1, pid \d+/);

    const json = JSON.parse((await mesh.run(['check', '--multicluster', '-o', 'json', ...c2])).stdout) as ChecksJson;
    assert.equal(json.cluster, 'cluster2');
    assert.equal(json.ok, true);
    assert.equal(json.checks.length, checkLines.length);
    assert.ok(json.checks.every((c) => c.ok && c.hint === undefined && typeof c.message === 'string'));
  });

  it('a Link whose gateway does not answer fails "remote gateways are alive" with what to do, and nothing else breaks', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    await mesh.ok(['apply', '-f', '-', ...c2], {
      input: `apiVersion: strait.dev/v1alpha1\nkind: Link\nmetadata: {name: ghost, namespace: strait-system}\nspec: {targetClusterName: ghost, gatewayAddress: "${address}", credentialsSecret: cluster-credentials-ghost}\n`,
    });
    const r = await checkUntil(['--multicluster', ...c2], 1, (run) => run.stdout.includes('Link strait-system/ghost: the gateway of ghost'));
    const gateways = block(r.stdout, 'remote gateways are alive');
    assert.equal(gateways[0], '× remote gateways are alive');
    assert.match(gateways[1]!, new RegExp(`^ {4}\\* Link strait-system/ghost: the gateway of ghost at ${address} (is not alive: \\d+ probes failed in a row|has not answered a probe yet); last: .*ECONNREFUSED`));
    assert.match(gateways[2]!, /^ {4}see: strait gateways --cluster cluster2; .*strait gateway start --cluster ghost/);
    assert.equal(block(r.stdout, 'remote cluster access credentials are valid')[0], '× remote cluster access credentials are valid');
    assert.match(r.stdout, /\nStatus check results are ×\n$/);
    // cluster1's link and mirror are untouched.
    assert.equal(block(r.stdout, 'all mirror services have endpoints')[0], '√ all mirror services have endpoints');

    const json = JSON.parse((await mesh.run(['check', '--multicluster', '-o', 'json', ...c2])).stdout) as ChecksJson;
    const alive = json.checks.find((c) => c.name === 'remote gateways are alive')!;
    assert.equal(json.ok, false);
    assert.equal(alive.ok, false);
    assert.match(alive.message, /Link strait-system\/ghost: the gateway of ghost at .* (is not alive|has not answered a probe yet)/);
    assert.match(alive.hint ?? '', /strait gateways --cluster cluster2/);

    // Local and cross-cluster calls go on as before.
    const out = await mesh.ok(['exec', 'deploy/sleep', ...c2, '--', 'curl', '-s', '-w', '%{http_code}\\n', 'http://helloworld:5000/hello?n=[1-20]']);
    assert.equal(out.split('\n').filter((l) => l === '200').length, 20, out);
    assert.match(out, /Hello version: v1/);
    assert.match(out, /Hello version: v2/);

    await mesh.ok(['delete', 'link', 'ghost', '-n', 'strait-system', ...c2]);
    await checkUntil(['--multicluster', ...c2], 0);
  });

  it('an orphaned mirror fails "all mirror services are part of a Link"', async () => {
    await mesh.ok(['apply', '-f', '-', ...c2], {
      input: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web-nowhere\n  labels: {mirror.linkerd.io/mirrored-service: "true", mirror.linkerd.io/cluster-name: nowhere}\nspec:\n  ports: [{port: 80, name: http}]\n',
    });
    const r = await mesh.run(['check', '--multicluster', ...c2]);
    assert.equal(r.code, 1, r.stdout);
    assert.deepEqual(block(r.stdout, 'all mirror services are part of a Link'), [
      '× all mirror services are part of a Link',
      '    * Service default/web-nowhere: orphaned mirror of cluster nowhere, which has no Link in cluster2',
      '    delete it (strait delete svc web-nowhere -n default --cluster cluster2) or re-link: strait link --from nowhere --to cluster2',
    ]);
    await mesh.ok(['delete', 'svc', 'web-nowhere', ...c2]);
  });

  it('a proxy of another version fails "data plane and cli versions match"; following the hint fixes it', async () => {
    const [sleep] = await readyPods(c2, 'app=sleep');
    const pod = sleep!.metadata.name;
    await mesh.ok(['annotate', 'pod', pod, 'strait.dev/proxy-version=0.0.0', '--overwrite', ...c2]);
    const r = await mesh.run(['check', ...c2]);
    assert.equal(r.code, 1, r.stdout);
    const versions = block(r.stdout, 'data plane and cli versions match');
    assert.equal(versions[0], '× data plane and cli versions match');
    assert.match(versions[1]!, new RegExp(`^ {4}\\* Pod default/${pod} runs proxy 0\\.0\\.0, the CLI is \\d+\\.\\d+\\.\\d+`));
    const restart = `strait delete pod ${pod} -n default --cluster cluster2`;
    assert.ok(versions[2]!.includes(restart), versions.join('\n'));
    await mesh.ok(restart.split(' ').slice(1));
    await readyPods(c2, 'app=sleep');
    await checkUntil(c2, 0);
  });
});
