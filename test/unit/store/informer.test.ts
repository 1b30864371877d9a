// The informer every controller uses: a list, a watch from its resourceVersion, and a relist that
// passes on what changed while the watch was down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../../src/api/types.js';
import { Informer } from '../../../src/store/informer.js';
import { LocalStore } from '../../../src/store/local.js';
import { ExpiredError, type Store, type Watch } from '../../../src/store/store.js';

const service = (name: string, labels: Record<string, string> = {}): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'sample', labels }, spec: {} });
const ref = (name: string) => ({ kind: 'Service', namespace: 'sample', name });
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(check(), 'timed out');
};

/** A store whose watches can be ended with an error, and whose next lists can be made to fail. */
function breakable(inner: Store) {
  const open: { watch: Watch; onError?: (err: Error) => void }[] = [];
  let failLists = 0;
  const store: Store = Object.assign(Object.create(inner) as Store, {
    list: (kind: string, opts?: Parameters<Store['list']>[1]) => (failLists-- > 0 ? Promise.reject(new Error('list refused')) : inner.list(kind, opts)),
    watch: (...args: Parameters<Store['watch']>) => {
      const entry = { watch: inner.watch(...args), onError: args[2] };
      open.push(entry);
      return entry.watch;
    },
  });
  return {
    store,
    failNextLists: (n: number) => void (failLists = n),
    end: (err: Error) => {
      for (const { watch, onError } of open.splice(0)) {
        watch.stop();
        onError?.(err);
      }
    },
  };
}

function recorder() {
  const changes: string[] = [];
  const onChange = (previous: Resource | undefined, current: Resource | undefined) =>
    void changes.push(current ? `${previous ? 'MODIFIED' : 'ADDED'} ${current.metadata.name}` : `DELETED ${previous!.metadata.name}`);
  return { changes, onChange };
}

test('an informer lists, then passes on each change; what a label selector leaves arrives as a deletion', async (t) => {
  const store = LocalStore.memory();
  t.after(() => store.close());
  await store.apply([service('a', { app: 'x' }), service('b', { app: 'y' })]);
  const { changes, onChange } = recorder();
  const informer = new Informer({ store, kind: 'Service', labelSelector: 'app=x', onChange });
  t.after(() => informer.stop());
  await informer.start();
  assert.deepEqual(changes, ['ADDED a']);
  assert.equal(informer.size, 1);
  await store.apply([service('c', { app: 'x' })]);
  await store.apply([service('a', { app: 'y' })]);
  await until(() => changes.length === 3);
  assert.deepEqual(changes, ['ADDED a', 'ADDED c', 'DELETED a']);
  assert.deepEqual([...informer.values()].map((o) => o.metadata.name), ['c']);
  assert.equal(informer.get('sample', 'c')?.metadata.name, 'c');
  assert.deepEqual([...informer.inNamespace('other')], []);
});

test('after its watch ends, an informer lists again and passes on only what changed meanwhile', async (t) => {
  const local = LocalStore.memory();
  t.after(() => local.close());
  const { store, end, failNextLists } = breakable(local);
  await local.apply([service('a'), service('b'), service('same')]);
  const { changes, onChange } = recorder();
  let resyncs = 0;
  const warnings: string[] = [];
  const informer = new Informer({ store, kind: 'Service', onChange, onResync: () => resyncs++, warn: (m) => warnings.push(m), backoff: { initialMs: 20, maxMs: 40 } });
  t.after(() => informer.stop());
  await informer.start();
  changes.length = 0;

  failNextLists(2);
  end(new Error('connection reset'));
  await local.delete([ref('a')]);
  await local.apply([service('b', { changed: 'yes' }), service('c')]);
  await until(() => resyncs === 1);
  assert.deepEqual(changes, ['DELETED a', 'MODIFIED b', 'ADDED c']);
  // Once for the watch, once for the failing lists: not once per retry.
  assert.equal(warnings.length, 2, warnings.join('\n'));

  // An expired history is routine: listed again at once, without a warning.
  end(new ExpiredError('too old'));
  await until(() => resyncs === 2);
  assert.equal(warnings.length, 2);
  await local.apply([service('d')]);
  await until(() => changes.includes('ADDED d'));
  assert.equal(informer.size, 4);
});

test('a first list that fails rejects start, and the informer keeps trying', async (t) => {
  const local = LocalStore.memory();
  t.after(() => local.close());
  const { store, failNextLists } = breakable(local);
  await local.apply([service('a')]);
  const { changes, onChange } = recorder();
  const informer = new Informer({ store, kind: 'Service', onChange, backoff: { initialMs: 10, maxMs: 10 } });
  t.after(() => informer.stop());
  failNextLists(1);
  await assert.rejects(informer.start(), /list refused/);
  await until(() => changes.length === 1);
  assert.deepEqual(changes, ['ADDED a']);
});
