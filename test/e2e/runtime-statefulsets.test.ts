// StatefulSets: pods web-0…web-N-1 started in order (each once the one before is ready), scaled
// down from the highest ordinal, with their own hostname and subdomain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../src/api/types.js';
import { isPodReady, type Pod, type StatefulSet } from '../../src/runtime/pod-types.js';
import { httpGet, serverContainer, startRuntime, waitFor } from './runtime-harness.js';

const INDEX = 211;

function statefulSet(replicas: number, env: { name: string; value: string }[] = []): Resource {
  const container = serverContainer(6379, 'redis');
  container.env = [...(container.env ?? []), ...env];
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', namespace: 'default' },
    spec: { replicas, serviceName: 'web', selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [container] } } },
  };
}

test('a StatefulSet starts web-0, web-1, web-2 in order, each after the previous is ready, and scales down from the highest', async (t) => {
  const rt = await startRuntime(t, INDEX);
  // For every pod created, whether the pods before it were ready at that moment.
  const readyNow = new Map<string, boolean>();
  const createdWhile: string[] = [];
  const deletedOrder: string[] = [];
  const watch = rt.store.watch({ kind: 'Pod' }, (e) => {
    const pod = e.object as Pod;
    if (e.type === 'ADDED') createdWhile.push(`${pod.metadata.name} after [${[...readyNow].filter(([, r]) => r).map(([n]) => n).join(',')}]`);
    if (e.type === 'DELETED') deletedOrder.push(pod.metadata.name);
    readyNow.set(pod.metadata.name, e.type !== 'DELETED' && isPodReady(pod));
  });

  await rt.store.apply([statefulSet(3)]);
  const pods = await rt.readyPods(3);
  assert.deepEqual(createdWhile, ['web-0 after []', 'web-1 after [web-0]', 'web-2 after [web-0,web-1]']);
  for (const pod of pods) {
    const ordinal = pod.metadata.name.slice('web-'.length);
    assert.equal(pod.spec?.hostname, pod.metadata.name);
    assert.equal(pod.spec?.subdomain, 'web');
    assert.equal(pod.metadata.labels?.['statefulset.kubernetes.io/pod-name'], pod.metadata.name);
    assert.equal(pod.metadata.labels?.['apps.kubernetes.io/pod-index'], ordinal);
    assert.match(pod.metadata.labels?.['controller-revision-hash'] ?? '', /^web-[bcdfghjklmnpqrstvwxz2456789]+$/);
    assert.equal((await httpGet(`http://${pod.status!.podIP}:6379/`)).body.split(' ')[0], pod.metadata.name);
  }
  const status = await waitFor('statefulset status 3/3', async () => {
    const s = (await rt.store.get({ kind: 'StatefulSet', namespace: 'default', name: 'web' })) as StatefulSet;
    return s.status?.readyReplicas === 3 ? s.status : undefined;
  });
  assert.equal(status.replicas, 3);

  await rt.store.apply([statefulSet(1)]);
  await rt.readyPods(1);
  assert.deepEqual((await rt.pods()).map((p) => p.metadata.name), ['web-0']);
  assert.deepEqual(deletedOrder, ['web-2', 'web-1']);
  watch.stop();
});

test('a StatefulSet template change replaces its pods one at a time from the highest ordinal, keeping their names', async (t) => {
  const rt = await startRuntime(t, INDEX + 1);
  await rt.store.apply([statefulSet(2)]);
  const before = await rt.readyPods(2);
  const deleted: string[] = [];
  const watch = rt.store.watch({ kind: 'Pod' }, (e) => {
    if (e.type === 'DELETED') deleted.push(e.object.metadata.name);
  });
  await rt.store.apply([statefulSet(2, [{ name: 'MODE', value: 'cluster' }])]);
  const after = await waitFor('both pods replaced and ready', async () => {
    const pods = await rt.pods();
    const replaced = pods.filter((p) => !before.some((b) => b.metadata.uid === p.metadata.uid) && isPodReady(p));
    return replaced.length === 2 && pods.length === 2 ? pods : undefined;
  });
  watch.stop();
  assert.deepEqual(after.map((p) => p.metadata.name), ['web-0', 'web-1']);
  assert.deepEqual(deleted, ['web-1', 'web-0']);
  const status = await waitFor('the rollout recorded in the status', async () => {
    const x = (await rt.store.get({ kind: 'StatefulSet', namespace: 'default', name: 'web' })) as StatefulSet;
    return x.status?.updatedReplicas === 2 && x.status.readyReplicas === 2 ? x.status : undefined;
  });
  assert.equal(status.currentRevision, status.updateRevision);
  assert.ok(after.every((p) => p.metadata.labels?.['controller-revision-hash'] === status.updateRevision));
  assert.notEqual(before[0]!.metadata.labels?.['controller-revision-hash'], status.updateRevision);
});
