import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../../src/api/types.js';
import type { Deployment, Pod, PodTemplateSpec } from '../../../src/runtime/pod-types.js';
import {
  canonicalJson,
  controllerOf,
  deploymentPodName,
  fnv1a32,
  ownsPod,
  podFromTemplate,
  podOrdinal,
  releasedBy,
  safeEncode,
  SAFE_ALPHABET,
  templateHash,
} from '../../../src/runtime/templates.js';
import { deletionOrder } from '../../../src/runtime/workloads.js';

const template: PodTemplateSpec = {
  metadata: { labels: { app: 'helloworld', version: 'v1' }, annotations: { 'linkerd.io/inject': 'enabled' } },
  spec: { containers: [{ name: 'helloworld', image: 'docker.io/istio/examples-helloworld-v1', ports: [{ containerPort: 5000, protocol: 'TCP' }] }] },
};

function deployment(spec: Partial<Deployment['spec']> = {}): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'helloworld-v1', namespace: 'sample', uid: 'uid-1' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'helloworld', version: 'v1' } }, template, ...spec },
  };
}

function pod(name: string, labels: Record<string, string>, ownerUid?: string, extra: Partial<Pod> = {}): Pod {
  const metadata: Pod['metadata'] = { name, namespace: 'sample', labels };
  if (ownerUid) metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'helloworld-v1', uid: ownerUid, controller: true }];
  return { apiVersion: 'v1', kind: 'Pod', metadata, ...extra };
}

test('FNV-1a 32 matches the published test vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

test('safe encoding maps digits as Kubernetes does', () => {
  assert.equal(safeEncode('0123456789'), '456789bcdf');
  assert.equal(SAFE_ALPHABET.length, 27);
});

test('the template hash is 9-10 safe characters, independent of key order, and changes with the template', () => {
  const hash = templateHash(template);
  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]{9,10}$/);
  const reordered: PodTemplateSpec = JSON.parse(JSON.stringify({ spec: template.spec, metadata: { annotations: template.metadata!.annotations, labels: template.metadata!.labels } })) as PodTemplateSpec;
  assert.equal(templateHash(reordered), hash);
  const changed = structuredClone(template);
  changed.spec.containers[0]!.image = 'docker.io/istio/examples-helloworld-v2';
  assert.notEqual(templateHash(changed), hash);
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] }), '{"a":[{"d":2}],"b":1}');
});

test('deployment pod names are <deployment>-<hash>-<5 safe characters>, unique among taken names', () => {
  const hash = templateHash(template);
  const taken = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const name = deploymentPodName('helloworld-v1', hash, taken);
    assert.match(name, new RegExp(`^helloworld-v1-${hash}-[${SAFE_ALPHABET}]{5}$`));
    assert.ok(!taken.has(name));
    taken.add(name);
  }
  // A long name is cut so that the pod name stays within 63 characters, as Kubernetes does.
  assert.equal(deploymentPodName('x'.repeat(70), hash, new Set()).length, 63);
});

test('statefulset ordinals come from names <set>-<n> only', () => {
  assert.equal(podOrdinal('web', 'web-0'), 0);
  assert.equal(podOrdinal('web', 'web-12'), 12);
  for (const other of ['web', 'web-', 'web-01', 'web-a', 'webx-1', 'web-1-2', 'other-1']) assert.equal(podOrdinal('web', other), undefined, other);
  assert.equal(podOrdinal('my-web', 'my-web-3'), 3);
});

test('a pod from the template carries its labels, annotations, owner and Kubernetes defaults', () => {
  const owner = deployment();
  const made = podFromTemplate(owner, 'helloworld-v1-abc-xyz12', { labels: { 'pod-template-hash': 'abc' } });
  assert.equal(made.apiVersion, 'v1');
  assert.equal(made.kind, 'Pod');
  assert.deepEqual(made.metadata.labels, { app: 'helloworld', version: 'v1', 'pod-template-hash': 'abc' });
  assert.deepEqual(made.metadata.annotations, { 'linkerd.io/inject': 'enabled' });
  assert.equal(made.metadata.namespace, 'sample');
  assert.deepEqual(controllerOf(made), { apiVersion: 'apps/v1', kind: 'Deployment', name: 'helloworld-v1', uid: 'uid-1', controller: true });
  assert.equal(made.spec?.serviceAccountName, 'default');
  assert.equal(made.spec?.restartPolicy, 'Always');
  assert.equal(made.spec?.terminationGracePeriodSeconds, 30);
  assert.deepEqual(made.spec?.containers, template.spec.containers);
  // The pod is a copy: changing it leaves the template alone.
  made.spec.containers[0]!.name = 'changed';
  assert.equal(template.spec.containers[0]!.name, 'helloworld');

  const withAccount = deployment({ template: { ...template, spec: { ...template.spec, serviceAccountName: 'reviews' } } });
  assert.equal(podFromTemplate(withAccount, 'p').spec?.serviceAccountName, 'reviews');
});

test('an owner owns the pods that name it as controller and match its selector', () => {
  const owner = deployment({ selector: { matchLabels: { app: 'helloworld' }, matchExpressions: [{ key: 'version', operator: 'In', values: ['v1', 'v2'] }] } });
  const mine = pod('a', { app: 'helloworld', version: 'v1' }, 'uid-1');
  const relabelled = pod('b', { app: 'helloworld', version: 'v3' }, 'uid-1');
  const foreign = pod('c', { app: 'helloworld', version: 'v1' }, 'uid-2');
  const orphan = pod('d', { app: 'helloworld', version: 'v1' });
  assert.equal(ownsPod(owner, mine), true);
  assert.equal(ownsPod(owner, relabelled), false);
  assert.equal(ownsPod(owner, foreign), false);
  assert.equal(ownsPod(owner, orphan), false);
  assert.equal(releasedBy(owner, relabelled), true);
  assert.equal(releasedBy(owner, mine), false);
  assert.equal(releasedBy(owner, foreign), false);
  // Only the controller reference counts.
  const nonController = pod('e', { app: 'helloworld', version: 'v1' });
  nonController.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'helloworld-v1', uid: 'uid-1' }];
  assert.equal(ownsPod(owner, nonController), false);
});

test('surplus pods are deleted unready first, then most restarted, then newest', () => {
  const ready = { phase: 'Running' as const, conditions: [{ type: 'Ready' as const, status: 'True' as const }] };
  const restarted = (n: number) => ({ ...ready, containerStatuses: [{ name: 'c', image: 'i', ready: true, restartCount: n }] });
  const at = (ts: string) => ({ creationTimestamp: ts });
  const pods: Pod[] = [
    pod('old-ready', {}, undefined, { status: ready }),
    pod('new-ready', {}, undefined, { status: ready }),
    pod('unready', {}, undefined, { status: { phase: 'Pending' } }),
    pod('crashy', {}, undefined, { status: restarted(3) }),
  ];
  Object.assign(pods[0]!.metadata, at('2024-01-01T00:00:00Z'));
  Object.assign(pods[1]!.metadata, at('2024-01-02T00:00:00Z'));
  Object.assign(pods[3]!.metadata, at('2024-01-01T00:00:00Z'));
  assert.deepEqual(deletionOrder(pods).map((p: Resource) => p.metadata.name), ['unready', 'crashy', 'new-ready', 'old-ready']);
});
