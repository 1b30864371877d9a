// The Kubernetes store against a real kube-apiserver (scripts/kube-env.mjs, no node agent): the
// generated CRDs, a guide manifest of each mesh kind, CRUD with preconditions, apply's roll-back,
// watches from a resourceVersion, label-selector watch semantics, 410 as ExpiredError, and an
// informer over it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseManifests } from '../../src/api/codec.js';
import { customResourceDefinitions } from '../../src/api/crds.js';
import { applyNamespace } from '../../src/api/namespace.js';
import type { Resource } from '../../src/api/types.js';
import { validateDocuments } from '../../src/api/validate.js';
import { Informer } from '../../src/store/informer.js';
import { KubernetesStore } from '../../src/store/kubernetes.js';
import { ConflictError, ExpiredError, NotFoundError, type WatchEvent, type WatchOptions } from '../../src/store/store.js';
import { crdConditions as conditionsOf, eventually, installCrds, KubeEnv } from './kube-harness.js';

const CLUSTER = 'kstore';
let env: KubeEnv | undefined;
let store: KubernetesStore;

before(async () => {
  env = await KubeEnv.up([CLUSTER], { node: false });
  store = await KubernetesStore.connect({ kubeconfig: env.kubeconfig, context: CLUSTER });
  await installCrds(store.rest);
});

after(async () => {
  await store?.close();
  await env?.down();
  env?.remove();
});

const crdConditions = () => conditionsOf(store.rest);
const until = (check: () => boolean | Promise<boolean>, what: string) => eventually(what, async () => await check(), 20_000);

const namespace = (name: string): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const service = (name: string, ns: string, labels: Record<string, string> = {}, port = 80): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { selector: { app: name }, ports: [{ port, protocol: 'TCP' }] },
});

/** Records a watch as `TYPE name` lines. */
function record(opts: WatchOptions) {
  const seen: string[] = [];
  const errors: Error[] = [];
  const watch = store.watch(opts, (e: WatchEvent) => void seen.push(`${e.type} ${e.object.metadata.name}`), (err) => void errors.push(err));
  return { seen, errors, watch };
}

/** Validated as `strait apply` validates a file, then written through the store. */
async function applyManifest(text: string, source: string): Promise<Resource[]> {
  const result = await validateDocuments(parseManifests(text, source));
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  const resources = applyNamespace(result.resources);
  const namespaces = [...new Set(resources.map((r) => r.metadata.namespace).filter((n): n is string => n !== undefined))];
  await store.apply(namespaces.map(namespace));
  return (await store.apply(resources)).map((r) => r.object);
}

test('every generated CRD is accepted by the API server as a structural schema', async () => {
  const conditions = await crdConditions();
  const ours = conditions.filter((c) => customResourceDefinitions().some((crd) => crd.metadata.name === c.name));
  assert.equal(ours.length, customResourceDefinitions().length);
  for (const c of ours) {
    assert.equal(c.Established, 'True', c.name);
    assert.equal(c.NonStructuralSchema, undefined, `${c.name} is not structural`);
  }
});

test('a guide manifest of each mesh kind is written through the store and reads back as Strait reads it', async () => {
  // SMI v1alpha1 with quantity weights (500m), v1alpha2 with integers; stored as v1alpha4.
  const [quantitySplit] = (await applyManifest(readFileSync('examples/linkerd/error-split.yaml', 'utf8'), 'error-split.yaml')).filter((r) => r.kind === 'TrafficSplit');
  const weights = (split: Resource) => (split.spec as { backends: { weight: number }[] }).backends.map((b) => b.weight);
  assert.deepEqual(weights(quantitySplit!), [0.5, 0.5]);
  const split = (await applyManifest(readFileSync('examples/strait/helloworld-split.yaml', 'utf8'), 'helloworld-split.yaml')).find((r) => r.kind === 'TrafficSplit')!;
  assert.deepEqual(weights((await store.get({ kind: 'TrafficSplit', namespace: split.metadata.namespace, name: split.metadata.name }))!), [80, 20]);

  const [profile] = await applyManifest(readFileSync('examples/linkerd/serviceprofile-podinfo.yaml', 'utf8'), 'serviceprofile-podinfo.yaml');
  assert.equal(profile!.kind, 'ServiceProfile');
  const routes = (profile!.spec as { routes: { condition: unknown }[] }).routes;
  assert.ok(routes.length > 0 && routes[0]!.condition, 'route conditions (a recursive schema) are kept');

  const objects = await applyManifest(
    `apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {name: web, namespace: kube-store-mcs}
---
apiVersion: strait.dev/v1alpha1
kind: Link
metadata: {name: east, namespace: strait-system}
spec: {targetClusterName: east, gatewayAddress: "127.30.0.2:4143", credentialsSecret: east-credentials}
`,
    'mesh-kinds.yaml',
  );
  assert.deepEqual(objects.map((o) => o.kind), ['ServiceExport', 'Link']);
  assert.deepEqual((objects[1]!.spec as { probeSpec: unknown }).probeSpec, { period: '3s', failureThreshold: 3, timeout: '1s' });
  // ServiceImports are written by the control plane, past admission: straight to the store.
  const [imported] = await store.apply([
    { apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceImport', metadata: { name: 'web', namespace: 'kube-store-mcs' }, spec: { type: 'ClusterSetIP', ports: [{ port: 80, protocol: 'TCP' }] } },
  ]);
  assert.equal(imported!.outcome, 'created');
  const status = await store.updateStatus({ kind: 'ServiceImport', namespace: 'kube-store-mcs', name: 'web' }, { clusters: [{ cluster: 'east' }] });
  assert.deepEqual(status.status, { clusters: [{ cluster: 'east' }] });

  // A field the CRD does not know is refused by the API server, as locally.
  await assert.rejects(
    store.apply([{ apiVersion: 'strait.dev/v1alpha1', kind: 'Link', metadata: { name: 'west', namespace: 'strait-system' }, spec: { targetClusterName: 'west' } }]),
    /gatewayAddress|Required/,
  );
});

test('CRUD: outcomes, resourceVersion preconditions, the status subresource, deletes', async () => {
  await store.apply([namespace('kube-store-crud')]);
  const [created] = await store.apply([service('web', 'kube-store-crud', { tier: 'front' })]);
  assert.equal(created!.outcome, 'created');
  assert.ok(created!.object.metadata.uid);
  assert.equal((await store.apply([service('web', 'kube-store-crud', { tier: 'front' })]))[0]!.outcome, 'unchanged');
  const [configured] = await store.apply([service('web', 'kube-store-crud', { tier: 'back' })]);
  assert.equal(configured!.outcome, 'configured');
  assert.equal(configured!.object.metadata.labels?.tier, 'back');
  assert.equal((configured!.object.metadata as unknown as Record<string, unknown>).managedFields, undefined);

  const stale = { ...service('web', 'kube-store-crud'), metadata: { ...service('web', 'kube-store-crud').metadata, resourceVersion: created!.object.metadata.resourceVersion } };
  await assert.rejects(store.apply([stale]), ConflictError);

  const withStatus = await store.updateStatus({ kind: 'Service', namespace: 'kube-store-crud', name: 'web' }, { loadBalancer: {}, conditions: [{ type: 'strait.dev/Conflict', status: 'False', reason: 'None', message: 'no conflict', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] });
  assert.equal((withStatus.status as { conditions: { type: string }[] }).conditions[0]!.type, 'strait.dev/Conflict');
  await assert.rejects(store.updateStatus({ kind: 'Service', namespace: 'kube-store-crud', name: 'nope' }, {}), NotFoundError);

  await store.apply([service('api', 'kube-store-crud', { tier: 'front' }), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'token', namespace: 'kube-store-crud' }, stringData: { token: 'x' } } as Resource]);
  const front = await store.list('Service', { namespace: 'kube-store-crud', labelSelector: { matchLabels: { tier: 'front' } } });
  assert.deepEqual(front.items.map((s) => s.metadata.name), ['api']);
  assert.ok(Number(front.resourceVersion) > 0);
  assert.equal(front.items[0]!.apiVersion, 'v1');
  assert.equal(front.items[0]!.kind, 'Service');
  const secret = await store.get({ kind: 'Secret', namespace: 'kube-store-crud', name: 'token' });
  assert.equal((secret as { data?: Record<string, string> }).data?.token, Buffer.from('x').toString('base64'));
  // The controller-manager's: an EndpointSlice for the Service, a ServiceAccount for the namespace.
  await until(async () => (await store.list('EndpointSlice', { namespace: 'kube-store-crud', labelSelector: 'kubernetes.io/service-name=web' })).items.length === 1, 'the EndpointSlice of web');
  await until(async () => (await store.get({ kind: 'ServiceAccount', namespace: 'kube-store-crud', name: 'default' })) !== undefined, 'the default ServiceAccount');

  const current = (await store.get({ kind: 'Service', namespace: 'kube-store-crud', name: 'web' }))!;
  await assert.rejects(store.delete([{ kind: 'Service', namespace: 'kube-store-crud', name: 'api' }, { kind: 'Service', namespace: 'kube-store-crud', name: 'web', resourceVersion: created!.object.metadata.resourceVersion }]), ConflictError);
  assert.ok(await store.get({ kind: 'Service', namespace: 'kube-store-crud', name: 'api' }), 'a failed precondition deletes nothing');
  const deleted = await store.delete([{ kind: 'Service', namespace: 'kube-store-crud', name: 'web', resourceVersion: current.metadata.resourceVersion }, { kind: 'Service', namespace: 'kube-store-crud', name: 'gone' }]);
  assert.deepEqual(deleted.map((d) => [d.ref.name, d.deleted]), [['web', true], ['gone', false]]);
  assert.equal(await store.get({ kind: 'Service', namespace: 'kube-store-crud', name: 'web' }), undefined);
});

test('apply is undone when one of its objects is refused: created objects are deleted, changed ones restored', async () => {
  await store.apply([namespace('kube-store-undo'), service('kept', 'kube-store-undo', { version: '1' })]);
  await assert.rejects(store.apply([service('kept', 'kube-store-undo', { version: '2' }), service('fresh', 'kube-store-undo'), service('bad', 'kube-store-undo', {}, 70_000)]), /port/);
  assert.equal(await store.get({ kind: 'Service', namespace: 'kube-store-undo', name: 'fresh' }), undefined);
  assert.equal((await store.get({ kind: 'Service', namespace: 'kube-store-undo', name: 'kept' }))!.metadata.labels?.version, '1');
});

test('a watch delivers every change after its resourceVersion, in order; without one, changes from now on', async () => {
  await store.apply([namespace('kube-store-watch'), service('before', 'kube-store-watch')]);
  const { resourceVersion } = await store.list('Service', { namespace: 'kube-store-watch' });
  await store.apply([service('a', 'kube-store-watch')]);
  await store.apply([service('a', 'kube-store-watch', { changed: 'yes' })]);
  await store.delete([{ kind: 'Service', namespace: 'kube-store-watch', name: 'a' }]);
  const resumed = record({ kind: 'Service', namespace: 'kube-store-watch', resourceVersion });
  const fresh = record({ kind: 'Service', namespace: 'kube-store-watch' });
  await sleep(500);
  await store.apply([service('b', 'kube-store-watch')]);
  await until(() => resumed.seen.length === 4 && fresh.seen.length === 1, 'the watch events');
  assert.deepEqual(resumed.seen, ['ADDED a', 'MODIFIED a', 'DELETED a', 'ADDED b']);
  assert.deepEqual(fresh.seen, ['ADDED b']);
  resumed.watch.stop();
  fresh.watch.stop();
  assert.deepEqual([...resumed.errors, ...fresh.errors], []);
});

test('a label-selector watch sees an object that leaves the selector as DELETED, one that enters as ADDED', async () => {
  await store.apply([namespace('kube-store-labels'), service('x', 'kube-store-labels', { app: 'web' })]);
  const { resourceVersion } = await store.list('Service', { namespace: 'kube-store-labels' });
  const watch = record({ kind: 'Service', namespace: 'kube-store-labels', labelSelector: 'app=web', resourceVersion });
  await store.apply([service('x', 'kube-store-labels', { app: 'other' })]);
  await store.apply([service('y', 'kube-store-labels', { app: 'other' })]);
  await store.apply([service('y', 'kube-store-labels', { app: 'web' })]);
  await until(() => watch.seen.length === 2, 'the selector events');
  assert.deepEqual(watch.seen, ['DELETED x', 'ADDED y']);
  watch.watch.stop();
});

test('a watch from a resourceVersion older than the API server keeps fails with ExpiredError (410)', async () => {
  const watch = record({ kind: 'Service', resourceVersion: '1' });
  await until(() => watch.errors.length === 1, 'the watch to fail');
  assert.ok(watch.errors[0] instanceof ExpiredError, `${watch.errors[0]?.name}: ${watch.errors[0]?.message}`);
  assert.throws(() => store.watch({}, () => {}), /one kind at a time/);
});

test('a slow watcher holds the stream back and still gets every event, in order', async () => {
  await store.apply([namespace('kube-store-slow')]);
  const { resourceVersion } = await store.list('Secret', { namespace: 'kube-store-slow' });
  const seen: string[] = [];
  const watch = store.watch({ kind: 'Secret', namespace: 'kube-store-slow', resourceVersion }, async (e) => {
    seen.push(e.object.metadata.name);
    if (seen.length === 1) await sleep(1500);
  });
  const names = Array.from({ length: 50 }, (_, i) => `s${String(i).padStart(2, '0')}`);
  await store.apply(names.map((name) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'kube-store-slow' }, stringData: { v: 'x'.repeat(4096) } })));
  await sleep(500);
  assert.equal(seen.length, 1, 'nothing more is delivered while the first event is handled');
  await until(() => seen.length === names.length, 'every event');
  assert.deepEqual(seen, names);
  watch.stop();
});

test('an informer over the Kubernetes store lists, then passes on each change', async () => {
  await store.apply([namespace('kube-store-informer'), service('one', 'kube-store-informer')]);
  const changes: string[] = [];
  const informer = new Informer({
    store,
    kind: 'Service',
    namespace: 'kube-store-informer',
    onChange: (previous, current) => void changes.push(current ? `${previous ? 'MODIFIED' : 'ADDED'} ${current.metadata.name}` : `DELETED ${previous!.metadata.name}`),
  });
  await informer.start();
  await store.apply([service('two', 'kube-store-informer')]);
  await store.delete([{ kind: 'Service', namespace: 'kube-store-informer', name: 'one' }]);
  await until(() => changes.length === 3, 'the informer changes');
  assert.deepEqual(changes, ['ADDED one', 'ADDED two', 'DELETED one']);
  assert.deepEqual([...informer.values()].map((s) => s.metadata.name), ['two']);
  informer.stop();
});
