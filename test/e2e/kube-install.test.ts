// strait install, check and uninstall against a real kube-apiserver (kube-env): the bad inputs
// refused before anything is written, install twice changing nothing, the injector webhook
// mutating a pod created with kubectl, TokenReview of real TokenRequest tokens, and uninstall
// leaving exactly what was there before.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type https from 'node:https';
import { Mesh, waitFor } from '../support/cli.js';
import { KubeEnv } from './kube-harness.js';
import { KubeApi } from '../../src/control/kube-api.js';
import { loadKubeConfig } from '../../src/cli/kube-context.js';
import { createServingPem } from '../../src/cli/install-pki.js';
import { kubeInjectorOptions } from '../../src/control/kube-injector.js';
import { startInjectorWebhook } from '../../src/control/webhook.js';
import { kubeCredentialVerifier } from '../../src/control/token-review.js';
import { CredentialRejected } from '../../src/identity/credentials.js';

const CONTEXT = 'kinst';

interface PodJson {
  metadata: { annotations?: Record<string, string> };
  spec: {
    initContainers?: { name: string; restartPolicy?: string; env?: { name: string; value?: string }[] }[];
    containers: { name: string; env?: { name: string; value?: string }[] }[];
    volumes?: { name: string; projected?: { sources: { serviceAccountToken?: { audience: string } }[] } }[];
  };
}

/** A Linkerd SMI extension's TrafficSplit CRD, serving `versions`. */
const smiCrd = (versions: string[]) =>
  stringify({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'trafficsplits.split.smi-spec.io', labels: { 'linkerd.io/extension': 'smi' } },
    spec: {
      group: 'split.smi-spec.io',
      scope: 'Namespaced',
      names: { kind: 'TrafficSplit', plural: 'trafficsplits', singular: 'trafficsplit', listKind: 'TrafficSplitList' },
      versions: versions.map((name, i) => ({ name, served: true, storage: i === 0, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } })),
    },
  });

describe('strait install on Kubernetes', () => {
  let kube: KubeEnv;
  let mesh: Mesh;
  let baseline: Set<string>;
  let admin: KubeApi;
  const strait = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) => mesh.run([...args, '--kubeconfig', kube.kubeconfig], opts);

  before(async () => {
    kube = await KubeEnv.up([CONTEXT]);
    mesh = new Mesh('strait-kinst-');
    admin = await KubeApi.connect(await loadKubeConfig({ kubeconfig: kube.kubeconfig, context: CONTEXT }));
    baseline = await kube.inventory(CONTEXT);
  });
  after(async () => {
    await kube?.down();
    kube?.remove();
  });

  it('refuses a context that does not exist and an API server that does not answer, naming what to do', async () => {
    const missing = await strait(['install', '--context', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /context "nope" is not in --kubeconfig .*kubeconfig/);
    assert.match(missing.stderr, new RegExp(`its contexts: ${CONTEXT}`));

    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const file = join(kube.dir, 'silent-kubeconfig');
    writeFileSync(file, stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'silent', clusters: [{ name: 'silent', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'silent', context: { cluster: 'silent', user: 'u' } }] }));
    try {
      const install = await mesh.run(['install', '--kubeconfig', file, '--request-timeout', '1s']);
      assert.equal(install.code, 1);
      assert.match(install.stderr, new RegExp(`the Kubernetes API server at https://127.0.0.1:${port} \\(context silent\\) did not answer within 1 s`));
      const check = await mesh.run(['check', '--kubeconfig', file, '--request-timeout', '1s']);
      assert.equal(check.code, 1);
      assert.match(check.stdout, /× can reach the Kubernetes API server\n\s+\* the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+ \(context silent\) did not answer within 1 s/);
      // Every command that reads a cluster with --context says the same.
      for (const args of [['get', 'pods'], ['stat', 'deploy'], ['service', 'list']]) {
        const r = await mesh.run([...args, '--kubeconfig', file, '--request-timeout', '1s']);
        assert.equal(r.code, 1, args.join(' '));
        assert.match(r.stderr, new RegExp(`the API server of context silent at https://127\\.0\\.0\\.1:${port} did not answer: .*no answer within 1000 ms\n\\s+check it is running: kubectl --context silent cluster-info`));
      }
    } finally {
      silent.close();
    }
  });

  it('refuses an account that lacks a permission before writing anything, naming the verb and resource', async () => {
    await kube.k(CONTEXT, ['create', 'serviceaccount', 'limited', '-n', 'default']);
    await kube.k(CONTEXT, ['create', 'clusterrolebinding', 'limited-view', '--clusterrole=view', '--serviceaccount=default:limited']);
    const token = (await kube.k(CONTEXT, ['create', 'token', 'limited', '-n', 'default'])).trim();
    const config = parse(await kube.k(CONTEXT, ['config', 'view', '--raw', '--minify'])) as { users: { user: Record<string, string> }[] };
    config.users[0]!.user = { token };
    const file = join(kube.dir, 'limited-kubeconfig');
    writeFileSync(file, stringify(config));
    try {
      const r = await mesh.run(['install', '--kubeconfig', file]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /the account of context kinst may not install Strait; nothing was changed/);
      assert.match(r.stderr, /- create customresourcedefinitions\.apiextensions\.k8s\.io \(cluster-wide\)/);
      assert.match(r.stderr, /- create clusterroles\.rbac\.authorization\.k8s\.io \(cluster-wide\)/);
      assert.match(r.stderr, /- patch secrets in namespace strait-system/);
      const pre = await mesh.run(['check', '--pre', '--kubeconfig', file]);
      assert.equal(pre.code, 1);
      assert.match(pre.stdout, /× can create the objects of an install\n(\s+\* [^\n]*\n)*?\s+\* the account of context kinst may not create customresourcedefinitions/);
      assert.equal((await kube.kubectl(CONTEXT, ['get', 'namespace', 'strait-system'])).code, 1, 'nothing was written');
    } finally {
      await kube.k(CONTEXT, ['delete', 'clusterrolebinding', 'limited-view']);
      await kube.k(CONTEXT, ['delete', 'serviceaccount', 'limited', '-n', 'default']);
    }
  });

  it("refuses Linkerd SMI's TrafficSplit CRD when it lacks the version Strait reads, and writes nothing", async () => {
    await kube.k(CONTEXT, ['apply', '-f', '-'], smiCrd(['v1alpha1', 'v1alpha2']));
    try {
      const r = await strait(['install', '--context', CONTEXT]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /customresourcedefinitions\/trafficsplits\.split\.smi-spec\.io \(installed by smi\) serves v1alpha1, v1alpha2, but Strait reads v1alpha4/);
      assert.match(r.stderr, /linkerd smi uninstall/);
      assert.equal((await kube.kubectl(CONTEXT, ['get', 'namespace', 'strait-system'])).code, 1, 'nothing was written');
      const crds = await kube.k(CONTEXT, ['get', 'crd', '-o', 'name']);
      assert.equal(crds.trim(), 'customresourcedefinition.apiextensions.k8s.io/trafficsplits.split.smi-spec.io');
    } finally {
      await kube.k(CONTEXT, ['delete', 'crd', 'trafficsplits.split.smi-spec.io']);
    }
  });

  it('install --print | kubectl apply -f - installs, and uninstall then leaves the cluster as it was', async () => {
    const printed = await strait(['install', '--print', '--cluster-name', CONTEXT]);
    assert.equal(printed.code, 0, printed.stderr);
    await kube.k(CONTEXT, ['apply', '-f', '-'], printed.stdout);
    assert.match(await kube.k(CONTEXT, ['get', 'mutatingwebhookconfiguration', '-o', 'name']), /strait-proxy-injector/);
    const removed = await strait(['uninstall', '--context', CONTEXT], { timeoutMs: 180_000 });
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /namespaces\/strait-system deleted/);
    assert.deepEqual([...(await kube.inventory(CONTEXT))].filter((x) => !baseline.has(x)), []);
  });

  it('reuses a TrafficSplit CRD that serves v1alpha4, and a second install changes nothing', async () => {
    await kube.k(CONTEXT, ['apply', '-f', '-'], smiCrd(['v1alpha4', 'v1alpha2', 'v1alpha1']));
    const first = await strait(['install', '--context', CONTEXT]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /customresourcedefinitions\.apiextensions\.k8s\.io\/trafficsplits\.split\.smi-spec\.io reused \(installed by smi; it serves v1alpha4, v1alpha2, v1alpha1, and uninstall leaves it\)/);
    assert.match(first.stdout, /mutatingwebhookconfigurations\.admissionregistration\.k8s\.io\/strait-proxy-injector created/);
    // What install writes, without what controllers write meanwhile (status, the deployment's revision):
    // the control-plane pod starts between the two installs.
    const versions = async () => {
      const list = JSON.parse(await kube.k(CONTEXT, ['get', 'namespaces,crd,clusterroles,clusterrolebindings,mutatingwebhookconfigurations,secrets,configmaps,services,deployments,serviceaccounts', '-A', '-l', 'app.kubernetes.io/part-of=strait', '-o', 'json'])) as { items: { kind: string; metadata: Record<string, unknown> & { name: string; annotations?: Record<string, string> }; status?: unknown }[] };
      return list.items.map(({ status: _status, metadata: { resourceVersion: _rv, managedFields: _mf, annotations, ...metadata }, ...rest }) => {
        const { 'deployment.kubernetes.io/revision': _revision, ...own } = annotations ?? {};
        return `${rest.kind}/${metadata.name} ${JSON.stringify({ ...rest, metadata, annotations: own })}`;
      }).join('\n');
    };
    const before = await versions();
    const second = await strait(['install', '--context', CONTEXT]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /Strait was already installed as asked: nothing changed\./);
    assert.doesNotMatch(second.stdout, / (created|configured)\b/);
    assert.equal(await versions(), before, 'no object was written again');
  });

  it('admits a pod without a proxy while the webhook does not answer (failurePolicy Ignore), and check says so', async () => {
    // No control-plane pod, so nothing serves the installed webhook (the tests after this one call their own).
    await kube.k(CONTEXT, ['scale', 'deployment', 'strait-control-plane', '-n', 'strait-system', '--replicas=0']);
    await waitFor('no control-plane pod', async () => (await kube.k(CONTEXT, ['get', 'pods', '-n', 'strait-system', '-o', 'name'])).trim() === '', 60_000, 250);
    const stat = await strait(['stat', '--context', CONTEXT, 'deploy', '-n', 'strait-system']);
    assert.equal(stat.code, 1);
    assert.match(stat.stderr, /no control-plane pod of Strait is ready in context kinst\n\s+see: kubectl --context kinst get pods -n strait-system/);
    await kube.k(CONTEXT, ['create', 'namespace', 'sample']);
    await kube.k(CONTEXT, ['annotate', 'namespace', 'sample', 'linkerd.io/inject=enabled']);
    await kube.k(CONTEXT, ['run', 'early', '-n', 'sample', '--image=curlimages/curl', '--restart=Never', '--', 'sleep', '3650d']);
    const pod = JSON.parse(await kube.k(CONTEXT, ['get', 'pod', 'early', '-n', 'sample', '-o', 'json'])) as PodJson;
    assert.equal(pod.spec.initContainers, undefined, 'no proxy: the webhook was not called');
    const check = await strait(['check', '--context', CONTEXT]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /√ the proxy injector webhook is configured\n\s+\* strait-proxy-injector, failurePolicy Ignore/);
    assert.match(check.stdout, /× the proxy injector webhook answers\n[^\n]*came back without one[^\n]*\n\s+with failurePolicy Ignore, pods created now start without a proxy/);
    assert.match(check.stdout, /√ issuer certificate is issued by the trust anchors/);
    assert.match(check.stdout, /√ CRDs are installed/);
  });

  it('the webhook gives a pod created with kubectl a native proxy sidecar, its token and env', async () => {
    const anchors = (JSON.parse(await kube.k(CONTEXT, ['get', 'configmap', 'strait-trust-anchors', '-n', 'strait-system', '-o', 'json'])) as { data: Record<string, string> }).data['ca-bundle.crt']!;
    const tls = await createServingPem('strait-control-plane', 'strait-system', { ips: ['127.0.0.1'] });
    const events: string[] = [];
    const options = await kubeInjectorOptions(admin, { cluster: CONTEXT, trustDomain: 'cluster.local', trustAnchorsPem: anchors, onEvent: (e) => events.push(`${e.pod} ${e.injected}`) });
    const server: https.Server = await startInjectorWebhook({ ...options, cert: tls.cert, key: tls.key, host: '127.0.0.1', port: 0 });
    const port = (server.address() as net.AddressInfo).port;
    // The installed configuration, but calling this process (the control-plane pod is not what is tested here).
    const installed = JSON.parse(await kube.k(CONTEXT, ['get', 'mutatingwebhookconfiguration', 'strait-proxy-injector', '-o', 'json'])) as { webhooks: Record<string, unknown>[] };
    const webhook = { ...installed.webhooks[0], name: 'e2e.inject.strait.dev', clientConfig: { url: `https://127.0.0.1:${port}/inject`, caBundle: Buffer.from(tls.cert).toString('base64') } };
    await kube.k(CONTEXT, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'strait-e2e-injector' }, webhooks: [webhook] }));
    try {
      await kube.k(CONTEXT, ['run', 'meshed', '-n', 'sample', '--image=curlimages/curl', '--restart=Never', '--', 'sleep', '3650d']);
      await kube.k(CONTEXT, ['run', 'plain', '-n', 'default', '--image=curlimages/curl', '--restart=Never', '--', 'sleep', '3650d']);
      const pod = JSON.parse(await kube.k(CONTEXT, ['get', 'pod', 'meshed', '-n', 'sample', '-o', 'json'])) as PodJson;
      const proxy = pod.spec.initContainers?.[0];
      assert.equal(proxy?.name, 'strait-proxy');
      assert.equal(proxy.restartPolicy, 'Always', 'a native sidecar');
      const env = Object.fromEntries((proxy.env ?? []).map((e) => [e.name, e.value]));
      const clusterIp = (await kube.k(CONTEXT, ['get', 'svc', 'strait-control-plane', '-n', 'strait-system', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
      assert.equal(env.STRAIT_CONTROL_PLANE, `${clusterIp}:8086`);
      assert.equal(env.STRAIT_IDENTITY_TOKEN_FILE, 'var/run/secrets/strait/identity/token');
      const token = pod.spec.volumes?.find((v) => v.name === 'strait-identity-token');
      assert.equal(token?.projected?.sources[0]?.serviceAccountToken?.audience, 'identity.strait.dev');
      assert.ok(pod.spec.containers[0]!.env?.some((e) => e.name === 'http_proxy'));
      assert.ok(pod.metadata.annotations?.['strait.dev/proxy-version']);
      const cm = JSON.parse(await kube.k(CONTEXT, ['get', 'configmap', 'strait-trust-anchors', '-n', 'sample', '-o', 'json'])) as { metadata: { labels: Record<string, string> }; data: Record<string, string> };
      assert.equal(cm.data['ca-bundle.crt'], anchors);
      assert.equal(cm.metadata.labels['app.kubernetes.io/part-of'], 'strait');
      const plain = JSON.parse(await kube.k(CONTEXT, ['get', 'pod', 'plain', '-n', 'default', '-o', 'json'])) as PodJson;
      assert.equal(plain.spec.initContainers, undefined, 'a namespace that does not ask for injection');
      assert.ok(events.includes('sample/meshed true') && events.includes('default/plain false'), events.join(', '));
    } finally {
      await kube.k(CONTEXT, ['delete', 'mutatingwebhookconfiguration', 'strait-e2e-injector']);
      await kube.k(CONTEXT, ['delete', 'pod', 'plain', '-n', 'default', '--wait=false', '--grace-period=0', '--force']);
      server.close();
    }
  });

  it("certifies a pod's own token of Strait's audience through TokenReview, and not one of another audience or another pod", async () => {
    await kube.k(CONTEXT, ['create', 'serviceaccount', 'app', '-n', 'sample']);
    for (const name of ['tr-a', 'tr-b']) {
      // Bound to a node that does not exist: nothing runs them, and the test sets their address.
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'sample', annotations: { 'strait.dev/inject': 'disabled' } }, spec: { nodeName: 'nowhere', serviceAccountName: 'app', containers: [{ name: 'app', image: 'curlimages/curl' }] } };
      await kube.k(CONTEXT, ['apply', '-f', '-'], JSON.stringify(pod));
    }
    await kube.k(CONTEXT, ['patch', 'pod', 'tr-a', '-n', 'sample', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: '127.30.0.9', podIPs: [{ ip: '127.30.0.9' }] } })]);
    const token = async (pod: string, audience: string) => (await kube.k(CONTEXT, ['create', 'token', 'app', '-n', 'sample', '--audience', audience, '--bound-object-kind', 'Pod', '--bound-object-name', pod])).trim();
    const verifier = kubeCredentialVerifier(admin, CONTEXT);
    const rejected = (reason: string, message: RegExp) => (err: unknown) => err instanceof CredentialRejected && err.reason === reason && message.test(err.message);

    const own = await token('tr-a', 'identity.strait.dev');
    assert.deepEqual(await verifier.verify(own, '127.30.0.9'), { namespace: 'sample', serviceAccount: 'app', cluster: CONTEXT, pod: 'tr-a' });
    await assert.rejects(verifier.verify(await token('tr-a', 'https://kubernetes.default.svc.cluster.local'), '127.30.0.9'), rejected('wrong-audience', /did not accept the token/));
    await assert.rejects(verifier.verify(own, '127.30.0.10'), rejected('invalid-claims', /bound to pod sample\/tr-a \(127\.30\.0\.9\) but was presented from 127\.30\.0\.10/));
    const gone = await token('tr-b', 'identity.strait.dev');
    await kube.k(CONTEXT, ['delete', 'pod', 'tr-b', '-n', 'sample', '--grace-period=0', '--force']);
    await assert.rejects(verifier.verify(gone), (err: unknown) => err instanceof CredentialRejected);
  });

  it('uninstall removes everything install and the webhook made, leaves the reused CRD, and the cluster is as it was', async () => {
    const r = await strait(['uninstall', '--context', CONTEXT], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmaps\/strait-trust-anchors -n sample deleted/);
    assert.match(r.stdout, /Strait is uninstalled from context kinst\./);
    const left = [...(await kube.inventory(CONTEXT))].filter((x) => !baseline.has(x));
    // What the test made itself: the sample namespace with its pods and account, and Linkerd's CRD.
    const own = (x: string) => / sample\/|\/sample$/.test(x) || x.endsWith('split.smi-spec.io');
    assert.deepEqual(left.filter((x) => !own(x)), []);
    assert.ok(left.some((x) => x.endsWith('/trafficsplits.split.smi-spec.io')), 'the reused CRD stays');
    assert.ok(!left.includes('configmaps sample/strait-trust-anchors'));
    await kube.k(CONTEXT, ['delete', 'namespace', 'sample', '--wait=true', '--timeout=120s']);
    await kube.k(CONTEXT, ['delete', 'crd', 'trafficsplits.split.smi-spec.io', '--wait=true']);
    // The API server drops the APIServices of the CRD's group a moment after the CRD.
    let now = await kube.inventory(CONTEXT);
    for (let i = 0; i < 60 && [...now].some((x) => !baseline.has(x)); i++) {
      await new Promise((r) => setTimeout(r, 500));
      now = await kube.inventory(CONTEXT);
    }
    assert.deepEqual([...now].filter((x) => !baseline.has(x)), [], 'nothing was left');
    assert.deepEqual([...baseline].filter((x) => !now.has(x)), [], 'nothing else was removed');
    const again = await strait(['uninstall', '--context', CONTEXT]);
    assert.match(again.stdout, /Strait is not installed in context kinst: nothing to remove\./);
  });
});
