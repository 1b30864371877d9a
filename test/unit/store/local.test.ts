// The local store's semantics, in memory: metadata, apply outcomes, lists, atomic writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SelectorSyntaxError } from '../../../src/api/labels.js';
import type { Resource } from '../../../src/api/types.js';
import { LocalStore } from '../../../src/store/local.js';
import { ConflictError, NotFoundError } from '../../../src/store/store.js';

function service(name: string, namespace = 'sample', labels: Record<string, string> = {}, spec: unknown = { ports: [{ port: 5000 }] }): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec };
}

test('create sets uid, creationTimestamp, resourceVersion and generation', async () => {
  const store = LocalStore.memory();
  const [result] = await store.apply([service('helloworld', 'sample', { app: 'helloworld' })]);
  assert.equal(result!.outcome, 'created');
  const meta = result!.object.metadata;
  assert.match(meta.uid!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(meta.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Math.abs(Date.parse(meta.creationTimestamp!) - Date.now()) < 60_000);
  assert.equal(meta.resourceVersion, '1');
  assert.equal(meta.generation, 1);
  assert.deepEqual(await store.get({ kind: 'Service', namespace: 'sample', name: 'helloworld' }), result!.object);
  assert.equal(await store.get({ kind: 'Service', namespace: 'other', name: 'helloworld' }), undefined);
});

test('server-set fields in the input are ignored', async () => {
  const store = LocalStore.memory();
  const input = service('a');
  input.metadata.uid = 'mine';
  input.metadata.generation = 7;
  input.metadata.creationTimestamp = '2000-01-01T00:00:00Z';
  input.status = { ready: true };
  const { object } = (await store.apply([input]))[0]!;
  assert.notEqual(object.metadata.uid, 'mine');
  assert.equal(object.metadata.generation, 1);
  assert.notEqual(object.metadata.creationTimestamp, '2000-01-01T00:00:00Z');
  assert.equal(object.status, undefined, 'apply never writes status');
});

test('apply: unchanged writes nothing; labels bump resourceVersion; spec bumps generation too', async () => {
  const store = LocalStore.memory();
  const [created] = await store.apply([service('a', 'sample', { app: 'a' })]);
  await store.updateStatus({ kind: 'Service', namespace: 'sample', name: 'a' }, { loadBalancer: {} });

  const [same] = await store.apply([service('a', 'sample', { app: 'a' })]);
  assert.equal(same!.outcome, 'unchanged');
  assert.equal(same!.object.metadata.resourceVersion, '2');
  assert.equal((await store.list('Service')).resourceVersion, '2');

  const [relabelled] = await store.apply([service('a', 'sample', { app: 'a', tier: 'web' })]);
  assert.equal(relabelled!.outcome, 'configured');
  assert.equal(relabelled!.object.metadata.resourceVersion, '3');
  assert.equal(relabelled!.object.metadata.generation, 1);
  assert.deepEqual(relabelled!.object.metadata.labels, { app: 'a', tier: 'web' });

  const [respecced] = await store.apply([service('a', 'sample', { app: 'a', tier: 'web' }, { ports: [{ port: 6000 }] })]);
  assert.equal(respecced!.outcome, 'configured');
  assert.equal(respecced!.object.metadata.resourceVersion, '4');
  assert.equal(respecced!.object.metadata.generation, 2);
  // Kept across applies: identity, creation time and status.
  assert.equal(respecced!.object.metadata.uid, created!.object.metadata.uid);
  assert.equal(respecced!.object.metadata.creationTimestamp, created!.object.metadata.creationTimestamp);
  assert.deepEqual(respecced!.object.status, { loadBalancer: {} });

  // Labels and annotations are replaced, not merged; an empty map is the same as none.
  const [unlabelled] = await store.apply([{ ...service('a', 'sample', {}, { ports: [{ port: 6000 }] }) }]);
  assert.equal(unlabelled!.outcome, 'configured');
  assert.equal(unlabelled!.object.metadata.labels, undefined);
  const [again] = await store.apply([{ ...service('a', 'sample', undefined, { ports: [{ port: 6000 }] }) }]);
  assert.equal(again!.outcome, 'unchanged');
});

test('apply: a new apiVersion alone is a change, but not of the generation', async () => {
  const store = LocalStore.memory();
  const split = (apiVersion: string): Resource => ({ apiVersion, kind: 'TrafficSplit', metadata: { name: 's', namespace: 'sample' }, spec: { service: 'x' } });
  await store.apply([split('split.smi-spec.io/v1alpha1')]);
  const [r] = await store.apply([split('split.smi-spec.io/v1alpha2')]);
  assert.equal(r!.outcome, 'configured');
  assert.equal(r!.object.apiVersion, 'split.smi-spec.io/v1alpha2');
  assert.equal(r!.object.metadata.generation, 1);
});

test('apply: ownerReferences are kept unless given; an empty list removes them', async () => {
  const store = LocalStore.memory();
  const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u-1', controller: true };
  const pod = (ownerReferences?: (typeof owner)[]): Resource => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', ownerReferences }, spec: {} });
  await store.apply([pod([owner])]);
  const [kept] = await store.apply([pod()]);
  assert.equal(kept!.outcome, 'unchanged');
  assert.deepEqual(kept!.object.metadata.ownerReferences, [owner]);
  const [removed] = await store.apply([pod([])]);
  assert.equal(removed!.outcome, 'configured');
  assert.equal(removed!.object.metadata.ownerReferences, undefined);
});

test('updateStatus changes only the status; the same status writes nothing; a missing object is NotFound', async () => {
  const store = LocalStore.memory();
  await store.apply([service('a')]);
  const ref = { kind: 'Service', namespace: 'sample', name: 'a' };
  const updated = await store.updateStatus(ref, { phase: 'Ready' });
  assert.deepEqual(updated.status, { phase: 'Ready' });
  assert.equal(updated.metadata.resourceVersion, '2');
  assert.equal(updated.metadata.generation, 1);
  assert.deepEqual(updated.spec, service('a').spec);
  const same = await store.updateStatus(ref, { phase: 'Ready' });
  assert.equal(same.metadata.resourceVersion, '2');
  const cleared = await store.updateStatus(ref, undefined);
  assert.equal(cleared.status, undefined);
  assert.equal(cleared.metadata.resourceVersion, '3');
  await assert.rejects(store.updateStatus({ ...ref, name: 'missing' }, {}), (err: Error) => {
    assert.ok(err instanceof NotFoundError && err instanceof ConflictError);
    assert.equal(err.message, 'Service sample/missing does not exist');
    return true;
  });
});

test('the resourceVersion is one counter for the whole store; a multi-object apply takes a range', async () => {
  const store = LocalStore.memory();
  const results = await store.apply([service('a'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }, service('b', 'other')]);
  assert.deepEqual(
    results.map((r) => r.object.metadata.resourceVersion),
    ['1', '2', '3'],
  );
  const [deleted] = await store.delete([{ kind: 'Namespace', name: 'sample' }]);
  assert.deepEqual(deleted, { ref: { kind: 'Namespace', name: 'sample' }, deleted: true });
  assert.equal((await store.list('Service')).resourceVersion, '4');
  const [missing] = await store.delete([{ kind: 'Namespace', name: 'sample' }]);
  assert.equal(missing!.deleted, false);
  assert.equal((await store.list('Service')).resourceVersion, '4', 'deleting nothing bumps nothing');
});

test('writes made without waiting are committed in call order', async () => {
  const store = LocalStore.memory();
  const writes = Array.from({ length: 20 }, (_, i) => store.apply([service('a', 'sample', { round: String(i) })]));
  const results = await Promise.all(writes);
  assert.deepEqual(
    results.map((r) => r[0]!.object.metadata.resourceVersion),
    results.map((_, i) => String(i + 1)),
  );
  assert.equal((await store.get({ kind: 'Service', namespace: 'sample', name: 'a' }))!.metadata.labels!.round, '19');
});

test('objects handed out and taken in are copies', async () => {
  const store = LocalStore.memory();
  const input = service('a', 'sample', { app: 'a' });
  const [result] = await store.apply([input]);
  input.metadata.labels!.app = 'changed';
  result!.object.metadata.labels!.app = 'changed';
  const got = await store.get({ kind: 'Service', namespace: 'sample', name: 'a' });
  assert.equal(got!.metadata.labels!.app, 'a');
  (got!.spec as { ports: unknown[] }).ports.push({ port: 1 });
  const listed = (await store.list('Service')).items[0]!;
  assert.deepEqual(listed.spec, { ports: [{ port: 5000 }] });
  listed.metadata.name = 'renamed';
  assert.ok(await store.get({ kind: 'Service', namespace: 'sample', name: 'a' }));
});

test('list filters by kind, namespace and label selector, sorted by namespace then name', async () => {
  const store = LocalStore.memory();
  await store.apply([
    service('reviews', 'default', { app: 'reviews', version: 'v2' }),
    service('b', 'sample', { app: 'b' }),
    service('a', 'sample', { app: 'a', canary: 'true' }),
    service('reviews', 'bookinfo', { app: 'reviews', version: 'v1' }),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'a', namespace: 'sample' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bookinfo' } },
  ]);
  const names = async (kind: string, opts = {}) => (await store.list(kind, opts)).items.map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`);
  assert.deepEqual(await names('Service'), ['bookinfo/reviews', 'default/reviews', 'sample/a', 'sample/b']);
  assert.deepEqual(await names('Service', { namespace: 'sample' }), ['sample/a', 'sample/b']);
  assert.deepEqual(await names('Service', { labelSelector: 'app=reviews' }), ['bookinfo/reviews', 'default/reviews']);
  assert.deepEqual(await names('Service', { labelSelector: 'version in (v1,v3)' }), ['bookinfo/reviews']);
  assert.deepEqual(await names('Service', { labelSelector: '!canary,app' }), ['bookinfo/reviews', 'default/reviews', 'sample/b']);
  assert.deepEqual(await names('Service', { labelSelector: { matchLabels: { app: 'reviews' }, matchExpressions: [{ key: 'version', operator: 'NotIn', values: ['v1'] }] } }), ['default/reviews']);
  assert.deepEqual(await names('Service', { namespace: 'sample', labelSelector: 'app=reviews' }), []);
  assert.deepEqual(await names('Namespace'), ['/bookinfo', '/sample']);
  assert.deepEqual(await names('Deployment'), []);
  assert.equal((await store.list('Service')).resourceVersion, '7');
  await assert.rejects(store.list('Service', { labelSelector: 'app in (a' }), SelectorSyntaxError);
});

test('an apply that fails in the middle changes nothing', async () => {
  const store = LocalStore.memory();
  const [b] = await store.apply([service('b', 'sample', { v: '1' })]);
  await store.apply([service('b', 'sample', { v: '2' })]); // b is now at resourceVersion 2
  const staleB = service('b', 'sample', { v: '3' });
  staleB.metadata.resourceVersion = b!.object.metadata.resourceVersion; // "1": read before the last change
  const missingC = service('c');
  missingC.metadata.resourceVersion = '2';
  const events: string[] = [];
  store.watch({}, (e) => void events.push(`${e.type} ${e.object.metadata.name}`));

  await assert.rejects(store.apply([service('a'), service('d'), staleB, service('e')]), (err: Error) => {
    assert.ok(err instanceof ConflictError);
    assert.equal(err.message, 'Service sample/b has been modified: resourceVersion 1 was required, the stored one is 2; read it again and retry');
    return true;
  });
  await assert.rejects(store.apply([service('a'), service('b', 'sample', { v: '4' }), missingC]), /ConflictError: Service sample\/c does not exist, but resourceVersion 2 was required/);

  assert.deepEqual((await store.list('Service')).items.map((o) => [o.metadata.name, o.metadata.labels?.v]), [['b', '2']]);
  assert.equal((await store.list('Service')).resourceVersion, '2');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(events, [], 'a refused write is never seen by watchers');

  // With the current version the same write goes through.
  staleB.metadata.resourceVersion = '2';
  const results = await store.apply([service('a'), staleB]);
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['created', 'configured'],
  );
});

test('an invalid object fails the whole apply with a message naming it and the field', async () => {
  const store = LocalStore.memory();
  const cases: [unknown, RegExp][] = [
    [{ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'sample' } }, /apply: object 2 \(Service\): name must be a non-empty string$/],
    [{ apiVersion: 'v1', metadata: { name: 'x' } }, /apply: object 2: kind must be a non-empty string$/],
    [{ ...service('x'), metadata: { name: 'x', namespace: 'sample', labels: { app: 1 } } }, /apply: object 2 \(Service sample\/x\): metadata\.labels\.app must be a string$/],
    [{ ...service('x'), metadata: { name: 'x', finalizers: ['f'] } }, /apply: object 2 \(Service x\): metadata\.finalizers is not a field the store keeps$/],
    [{ ...service('x'), metadata: { name: 'x', namespace: '' } }, /namespace, when given, must be a non-empty string/],
    [{ ...service('x'), metadata: { name: 'x', resourceVersion: 'abc' } }, /metadata\.resourceVersion must be a decimal string, not "abc"/],
    [{ ...service('x'), spec: { big: 1n } }, /apply: object 2 \(Service sample\/x\): cannot be stored as JSON/],
  ];
  for (const [bad, message] of cases) {
    await assert.rejects(store.apply([service('ok'), bad as Resource]), message);
  }
  assert.deepEqual((await store.list('Service')).items, []);
  await assert.rejects(store.get({ kind: 'Service', name: '' }), /TypeError: get: name must be a non-empty string$/);
});

test('a delete that fails a precondition deletes nothing', async () => {
  const store = LocalStore.memory();
  const created = await store.apply([service('a'), service('b'), service('c')]);
  const refs = created.map((r) => ({ kind: 'Service', namespace: 'sample', name: r.object.metadata.name }));
  await assert.rejects(store.delete([refs[0]!, { ...refs[1]!, resourceVersion: '1' }, refs[2]!]), /Service sample\/b has been modified: resourceVersion 1 was required, the stored one is 2/);
  await assert.rejects(store.delete([refs[0]!, { kind: 'Service', namespace: 'sample', name: 'gone', resourceVersion: '2' }]), /Service sample\/gone does not exist/);
  assert.equal((await store.list('Service')).items.length, 3);
  assert.equal((await store.list('Service')).resourceVersion, '3');

  const results = await store.delete([refs[0]!, { ...refs[1]!, resourceVersion: '2' }, refs[2]!, refs[2]!]);
  assert.deepEqual(
    results.map((r) => r.deleted),
    [true, true, true, false],
  );
  assert.equal((await store.list('Service')).items.length, 0);
  assert.equal((await store.list('Service')).resourceVersion, '6');
});

test('a closed store refuses writes', async () => {
  const store = LocalStore.memory();
  await store.close();
  await assert.rejects(store.apply([service('a')]), /store memory is closed/);
  await store.close();
});
