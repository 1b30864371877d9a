// Watches of the local store: order, resuming from a resourceVersion, expiry, filters, bad subscribers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../../src/api/types.js';
import { LocalStore, WATCH_HISTORY_LIMIT } from '../../../src/store/local.js';
import { ExpiredError, type WatchEvent, type WatchOptions } from '../../../src/store/store.js';

function service(name: string, labels: Record<string, string> = {}, namespace = 'sample'): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec: {} };
}

const ref = (name: string, namespace = 'sample') => ({ kind: 'Service', namespace, name });

/** Lets queued deliveries run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Records a watch as `TYPE name@resourceVersion` lines. */
function record(store: LocalStore, opts: WatchOptions = {}) {
  const seen: string[] = [];
  const errors: Error[] = [];
  const watch = store.watch(
    opts,
    (e) => void seen.push(`${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`),
    (err) => void errors.push(err),
  );
  return { seen, errors, watch };
}

test('a watch from now sees every later change in order, DELETED with its own resourceVersion', async () => {
  const store = LocalStore.memory();
  await store.apply([service('before')]);
  const w = record(store);
  await store.apply([service('a'), service('b')]);
  await store.apply([service('a', { v: '2' })]);
  await store.updateStatus(ref('b'), { ok: true });
  await store.delete([ref('a')]);
  await settle();
  assert.deepEqual(w.seen, ['ADDED a@2', 'ADDED b@3', 'MODIFIED a@4', 'MODIFIED b@5', 'DELETED a@6']);
  w.watch.stop();
  await store.apply([service('c')]);
  await settle();
  assert.equal(w.seen.length, 5, 'nothing after stop');
  assert.deepEqual(w.errors, []);
});

test('a watch from a resourceVersion replays what followed it, then continues without gap or repeat', async () => {
  const store = LocalStore.memory();
  for (const name of ['a', 'b', 'c', 'd']) await store.apply([service(name)]);
  const { resourceVersion } = await store.list('Service'); // "4"
  const w = record(store, { resourceVersion: '2' });
  await store.apply([service('e')]);
  await settle();
  assert.deepEqual(w.seen, ['ADDED c@3', 'ADDED d@4', 'ADDED e@5']);
  const fromList = record(store, { resourceVersion });
  const fromNow = record(store, { resourceVersion: '5' });
  await store.delete([ref('a')]);
  await settle();
  assert.deepEqual(fromList.seen, ['ADDED e@5', 'DELETED a@6']);
  assert.deepEqual(fromNow.seen, ['DELETED a@6']);
});

test('a resourceVersion older than the history, or newer than the store, fails with ExpiredError', async () => {
  const store = LocalStore.memory();
  const objects = Array.from({ length: WATCH_HISTORY_LIMIT + 5 }, (_, i) => service(`s${i}`));
  await store.apply(objects); // resourceVersions 1 .. LIMIT + 5
  const expired = record(store, { resourceVersion: '4' });
  const oldest = record(store, { resourceVersion: '5' });
  const future = record(store, { resourceVersion: String(WATCH_HISTORY_LIMIT + 6) });
  await settle();
  assert.equal(expired.errors.length, 1);
  assert.ok(expired.errors[0] instanceof ExpiredError);
  assert.equal(expired.errors[0].message, `resourceVersion 4 is too old: store memory keeps the changes after 5; list again`);
  assert.deepEqual(oldest.errors, []);
  assert.equal(oldest.seen.length, WATCH_HISTORY_LIMIT);
  assert.equal(oldest.seen[0], 'ADDED s5@6');
  assert.ok(future.errors[0] instanceof ExpiredError);
  assert.match(future.errors[0].message, /is newer than store memory/);
  assert.throws(() => store.watch({ resourceVersion: 'x' }, () => undefined), /watch: resourceVersion must be a decimal string/);
});

test('filters: kind, namespace, selector; labels moving an object in or out of the selector', async () => {
  const store = LocalStore.memory();
  const byKind = record(store, { kind: 'ServiceAccount' });
  const byNamespace = record(store, { namespace: 'other' });
  const bySelector = record(store, { kind: 'Service', labelSelector: 'mirror.linkerd.io/exported=true' });
  await store.apply([service('a'), service('b', {}, 'other'), { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa', namespace: 'sample' } }]);
  await store.apply([service('a', { 'mirror.linkerd.io/exported': 'true' })]);
  await store.updateStatus(ref('a'), { x: 1 });
  await store.apply([service('a', { 'mirror.linkerd.io/exported': 'false' })]);
  await store.apply([service('a', { 'mirror.linkerd.io/exported': 'true' })]);
  await store.delete([ref('a'), ref('b', 'other')]);
  await settle();
  assert.deepEqual(byKind.seen, ['ADDED sa@3']);
  assert.deepEqual(byNamespace.seen, ['ADDED b@2', 'DELETED b@9']);
  assert.deepEqual(bySelector.seen, ['ADDED a@4', 'MODIFIED a@5', 'DELETED a@6', 'ADDED a@7', 'DELETED a@8']);
  assert.throws(() => store.watch({ labelSelector: 'a in (' }, () => undefined), /invalid label selector/);
});

test('a throwing subscriber ends only its own watch; the others and the store go on', async () => {
  const store = LocalStore.memory();
  const thrower = store.watch(
    {},
    (e) => {
      if (e.object.metadata.name === 'b') throw new Error('subscriber bug');
    },
    (err) => void errors.push(err.message),
  );
  const errors: string[] = [];
  const healthy = record(store);
  await store.apply([service('a')]);
  await store.apply([service('b')]);
  await store.apply([service('c')]);
  await settle();
  assert.deepEqual(errors, ['subscriber bug']);
  assert.deepEqual(healthy.seen, ['ADDED a@1', 'ADDED b@2', 'ADDED c@3']);
  thrower.stop(); // harmless after the end
  assert.equal((await store.list('Service')).items.length, 3);
});

test('a slow subscriber gets its events one at a time and in order, without holding up others', async () => {
  const store = LocalStore.memory();
  const slowSeen: string[] = [];
  let inside = 0;
  let release!: () => void;
  let gate = new Promise<void>((resolve) => (release = resolve));
  store.watch({}, async (e: WatchEvent) => {
    inside++;
    assert.equal(inside, 1, 'no two events at once');
    slowSeen.push(e.object.metadata.name);
    await gate;
    inside--;
  });
  const fast = record(store);
  await store.apply([service('a')]);
  await store.apply([service('b')]);
  await store.apply([service('c')]);
  await settle();
  assert.deepEqual(fast.seen, ['ADDED a@1', 'ADDED b@2', 'ADDED c@3']);
  assert.deepEqual(slowSeen, ['a']);
  gate = Promise.resolve();
  release();
  await settle();
  assert.deepEqual(slowSeen, ['a', 'b', 'c']);
});

test('watch events carry copies', async () => {
  const store = LocalStore.memory();
  const mutate = (e: WatchEvent) => {
    e.object.metadata.labels = { changed: 'yes' };
  };
  store.watch({}, mutate);
  const w = record(store, { labelSelector: 'app=a' });
  await store.apply([service('a', { app: 'a' })]);
  await settle();
  assert.deepEqual((await store.get(ref('a')))!.metadata.labels, { app: 'a' });
  assert.deepEqual(w.seen, ['ADDED a@1']);
});

test('events arrive only once their transaction is on disk; closing the store ends watches', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'strait-store-'));
  try {
    const store = await LocalStore.open(dir);
    const onDisk: boolean[] = [];
    const errors: string[] = [];
    store.watch(
      {},
      (e) => void onDisk.push(readFileSync(join(dir, 'log.jsonl'), 'utf8').includes(`"name":"${e.object.metadata.name}"`)),
      (err) => void errors.push(err.message),
    );
    await Promise.all(['a', 'b', 'c'].map((name) => store.apply([service(name)])));
    await settle();
    assert.deepEqual(onDisk, [true, true, true]);
    await store.close();
    assert.deepEqual(errors, [`store ${dir} is closed`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
