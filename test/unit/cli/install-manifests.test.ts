// What strait install writes: everything labelled for uninstall, least-privilege RBAC, the webhook's
// selectors and failure policy, the PKI in its Secret and ConfigMap, and the kubeconfig it reads.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlPlaneRules, installManifests } from '../../../src/cli/install-manifests.js';
import { createIssuerPem, createServingPem } from '../../../src/cli/install-pki.js';
import { loadKubeConfig } from '../../../src/cli/kube-context.js';
import { CliError } from '../../../src/cli/context.js';
import { installAccess } from '../../../src/cli/kube-install.js';
import { parseCertificates } from '../../../src/identity/pem.js';

const issuer = await createIssuerPem('cluster.local', 'c1');
const webhookTls = await createServingPem('strait-control-plane', 'strait-system');
const objects = installManifests({ clusterName: 'c1', trustDomain: 'cluster.local', gatewayServiceType: 'LoadBalancer', issuer, webhookTls });
const find = (kind: string, name?: string) => {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  assert.ok(o, `no ${kind} ${name ?? ''}`);
  return o;
};
/** The value at a dotted path (`spec.template.spec.containers.0.image`). */
const at = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], o);

describe('install manifests', () => {
  it('label every object for uninstall and put the namespaced ones in strait-system', () => {
    for (const o of objects) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'strait', `${o.kind}/${o.metadata.name}`);
      if (!['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(o.kind)) assert.equal(o.metadata.namespace, 'strait-system');
    }
    assert.equal(objects[0]!.kind, 'Namespace');
    assert.equal(objects.at(-1)!.kind, 'MutatingWebhookConfiguration', 'the webhook comes last, after what it calls');
    assert.deepEqual(objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name).sort(), [
      'links.strait.dev',
      'serviceexports.multicluster.x-k8s.io',
      'serviceimports.multicluster.x-k8s.io',
      'serviceprofiles.linkerd.io',
      'trafficsplits.split.smi-spec.io',
    ]);
  });

  it('grant the control plane only named verbs and resources, with tokenreviews create', () => {
    const rules = controlPlaneRules();
    for (const r of rules) {
      assert.ok(!r.verbs.includes('*') && !r.resources.includes('*') && !r.apiGroups.includes('*'), JSON.stringify(r));
    }
    assert.ok(rules.some((r) => r.apiGroups[0] === 'authentication.k8s.io' && r.resources[0] === 'tokenreviews' && r.verbs.join() === 'create'));
    const secrets = rules.filter((r) => r.apiGroups[0] === '' && r.resources.includes('secrets'));
    assert.deepEqual(secrets.map((r) => r.verbs.join()), ['get,list,watch'], 'secrets are only read');
    assert.equal(at(find('ClusterRoleBinding'), 'subjects.0.name'), 'control-plane');
  });

  it('configure the webhook with its own caBundle, failurePolicy Ignore, and never for strait-system or kube-system', () => {
    const hook = at(find('MutatingWebhookConfiguration'), 'webhooks.0');
    assert.equal(at(hook, 'failurePolicy'), 'Ignore');
    assert.equal(Buffer.from(at(hook, 'clientConfig.caBundle') as string, 'base64').toString(), webhookTls.cert);
    assert.deepEqual(at(hook, 'clientConfig.service'), { name: 'strait-control-plane', namespace: 'strait-system', path: '/inject', port: 443 });
    assert.deepEqual(at(hook, 'namespaceSelector.matchExpressions.0.values'), ['strait-system', 'kube-system']);
    assert.equal(at(hook, 'sideEffects'), 'NoneOnDryRun');
    const [cert] = parseCertificates(webhookTls.cert, 'serving');
    assert.match(cert!.getExtension('2.5.29.17')!.toString(), /strait-control-plane\.strait-system\.svc/);
  });

  it('hold the issuer in a Secret and the anchors in a ConfigMap, and run the images the node agent maps', () => {
    assert.equal(Buffer.from((at(find('Secret', 'strait-issuer'), 'data') as Record<string, string>)['tls.key']!, 'base64').toString(), issuer.issuerKey);
    assert.equal((at(find('ConfigMap', 'strait-trust-anchors'), 'data') as Record<string, string>)['ca-bundle.crt'], issuer.trustAnchors);
    const cp = at(find('Deployment', 'strait-control-plane'), 'spec.template.spec');
    assert.match(at(cp, 'containers.0.image') as string, /^strait\/control-plane:/);
    assert.equal(at(cp, 'serviceAccountName'), 'control-plane');
    assert.ok((at(cp, 'containers.0.args') as string[]).includes('--webhook-port'));
    // The gateway runs in the control plane's process: its Service leads there.
    assert.equal(objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'strait-gateway'), undefined);
    assert.equal((at(find('Service', 'strait-gateway'), 'spec.selector') as Record<string, string>)['app.kubernetes.io/component'], 'control-plane');
    assert.equal(at(find('Service', 'strait-gateway'), 'spec.type'), 'LoadBalancer');
    const nodePort = installManifests({ clusterName: 'c1', trustDomain: 'cluster.local', gatewayServiceType: 'NodePort', issuer, webhookTls });
    assert.equal(at(nodePort.find((o) => o.metadata.name === 'strait-gateway' && o.kind === 'Service'), 'spec.type'), 'NodePort');
  });

  it('need get, create and patch of each kind where it goes', () => {
    const access = installAccess(objects);
    assert.ok(access.some((a) => a.verb === 'create' && a.resource === 'clusterroles' && a.namespace === undefined));
    assert.ok(access.some((a) => a.verb === 'patch' && a.resource === 'secrets' && a.namespace === 'strait-system'));
  });
});

describe('kubeconfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-kubeconfig-'));
  const file = (name: string, context: string, current: boolean) => {
    const path = join(dir, name);
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\n${current ? `current-context: ${context}\n` : ''}clusters:\n- name: ${context}\n  cluster: {server: "https://127.0.0.9:6443"}\nusers:\n- name: ${context}\n  user: {token: t}\ncontexts:\n- name: ${context}\n  context: {cluster: ${context}, user: ${context}}\n`,
    );
    return path;
  };
  const a = file('a', 'alpha', true);
  const b = file('b', 'beta', true);

  it('merges KUBECONFIG as kubectl does: the first current-context wins, every context is there', async () => {
    const config = await loadKubeConfig({}, { KUBECONFIG: `${a}:${b}` });
    assert.equal(config.getCurrentContext(), 'alpha');
    assert.equal((await loadKubeConfig({ context: 'beta' }, { KUBECONFIG: `${a}:${b}` })).getCurrentContext(), 'beta');
    assert.equal((await loadKubeConfig({ kubeconfig: b }, { KUBECONFIG: a })).getCurrentContext(), 'beta', '--kubeconfig wins over KUBECONFIG');
  });

  it('names the contexts there are when the one asked for is not there, and the file when none exists', async () => {
    await assert.rejects(
      loadKubeConfig({ context: 'gamma' }, { KUBECONFIG: `${a}:${b}` }),
      (err: unknown) => err instanceof CliError && /context "gamma" is not in KUBECONFIG=/.test(err.message) && err.details.some((d) => /alpha, beta/.test(d)),
    );
    await assert.rejects(loadKubeConfig({ kubeconfig: join(dir, 'missing') }, {}), (err: unknown) => err instanceof CliError && /missing does not exist/.test(err.message));
  });
});
