// The local store on disk: reopening, compaction, damaged log ends, corruption.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../../src/api/types.js';
import { LocalStore, StoreCorruptError, type LocalStoreOptions } from '../../../src/store/local.js';

function service(name: string, labels: Record<string, string> = {}): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'sample', labels }, spec: { ports: [{ port: 5000 }] } };
}

const ref = (name: string) => ({ kind: 'Service', namespace: 'sample', name });

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'strait-store-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Opens the store collecting its warnings. */
async function open(dir: string, options: LocalStoreOptions = {}) {
  const warnings: string[] = [];
  const store = await LocalStore.open(dir, { warn: (m) => void warnings.push(m), ...options });
  return { store, warnings };
}

async function everything(store: LocalStore): Promise<Resource[]> {
  return [...(await store.list('Service')).items, ...(await store.list('Namespace')).items];
}

test('a reopened store has every object back with the same metadata, and continues its resourceVersions', async () => {
  await withDir(async (dir) => {
    const { store } = await open(dir);
    await store.apply([service('a', { app: 'a' }), service('b'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }]);
    await store.apply([service('a', { app: 'a' }), service('b', { changed: 'yes' })]);
    await store.updateStatus(ref('a'), { phase: 'Ready' });
    await store.apply([service('c')]);
    await store.delete([ref('c')]);
    const before = await everything(store);
    const version = (await store.list('Service')).resourceVersion;
    await store.close();

    const { store: reopened, warnings } = await open(dir);
    assert.deepEqual(await everything(reopened), before);
    assert.equal((await reopened.list('Service')).resourceVersion, version);
    assert.deepEqual(warnings, []);
    const [next] = await reopened.apply([service('d')]);
    assert.equal(next!.object.metadata.resourceVersion, String(Number(version) + 1));
    await reopened.close();
  });
});

test('after a restart, watches resume from a version the log still holds', async () => {
  await withDir(async (dir) => {
    const { store } = await open(dir);
    await store.apply([service('a')]);
    await store.apply([service('b')]);
    await store.delete([ref('a')]);
    await store.close();

    const { store: reopened } = await open(dir);
    const seen: string[] = [];
    reopened.watch({ resourceVersion: '1' }, (e) => void seen.push(`${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['ADDED b@2', 'DELETED a@3']);
    await reopened.close();
  });
});

test('compaction moves the log into the snapshot without losing anything', async () => {
  await withDir(async (dir) => {
    const { store } = await open(dir, { compactLogBytes: 4096 });
    for (let i = 0; i < 60; i++) await store.apply([service(`s${i % 20}`, { round: String(i) })]);
    await store.delete([ref('s0'), ref('s1')]);
    const before = await everything(store);
    const logSize = (await stat(join(dir, 'log.jsonl'))).size;
    assert.ok(logSize < 4096 + 1024, `the log was compacted (${logSize} bytes)`);
    const snapshot = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8')) as { resourceVersion: string; objects: Resource[] };
    assert.ok(Number(snapshot.resourceVersion) > 0);
    assert.ok(snapshot.objects.length > 0);
    await store.close();

    const { store: reopened } = await open(dir);
    assert.deepEqual(await everything(reopened), before);
    assert.equal(before.length, 18);
    await reopened.close();
    assert.deepEqual((await readdir(dir)).sort(), ['log.jsonl', 'snapshot.json'], 'no lock or temporary file left');
  });
});

test('log records the snapshot already holds (a crash during compaction) are skipped', async () => {
  await withDir(async (dir) => {
    const { store } = await open(dir, { compactLogBytes: 1024 * 1024 });
    await store.apply([service('a')]);
    await store.apply([service('b')]);
    await store.delete([ref('a')]);
    await store.close();
    const oldLog = await readFile(join(dir, 'log.jsonl'));

    const { store: compacting } = await open(dir, { compactLogBytes: 1 });
    await compacting.apply([service('c')]); // compacts: snapshot at 4, empty log
    await compacting.close();
    assert.equal((await stat(join(dir, 'log.jsonl'))).size, 0);
    // As if the crash came after the snapshot's rename but before the log was emptied.
    await writeFile(join(dir, 'log.jsonl'), oldLog);
    await writeFile(join(dir, 'snapshot.json.tmp'), '{"unfinished":');

    const { store: reopened, warnings } = await open(dir);
    assert.deepEqual(
      (await reopened.list('Service')).items.map((o) => o.metadata.name),
      ['b', 'c'],
    );
    assert.equal((await reopened.list('Service')).resourceVersion, '4');
    assert.deepEqual(warnings, []);
    await reopened.apply([service('d')]);
    await reopened.close();
    const { store: again } = await open(dir);
    assert.deepEqual(
      (await again.list('Service')).items.map((o) => o.metadata.name),
      ['b', 'c', 'd'],
    );
    await again.close();
  });
});

test('a failed compaction is a warning: writes go on and the log keeps everything', async () => {
  await withDir(async (dir) => {
    const { store, warnings } = await open(dir, { compactLogBytes: 1 });
    await mkdir(join(dir, 'snapshot.json.tmp')); // the snapshot cannot be written
    for (const name of ['a', 'b', 'c', 'd']) await store.apply([service(name)]);
    assert.ok(warnings.length >= 1 && warnings.length < 4, 'tried again only once the log has grown again');
    for (const w of warnings) assert.match(w, new RegExp(`^store ${dir}: compaction failed: EISDIR`));
    await store.close();
    await rm(join(dir, 'snapshot.json.tmp'), { recursive: true });
    const { store: reopened } = await open(dir);
    assert.deepEqual(
      (await reopened.list('Service')).items.map((o) => o.metadata.name),
      ['a', 'b', 'c', 'd'],
    );
    await reopened.close();
  });
});

test('an unchanged apply writes nothing to disk', async () => {
  await withDir(async (dir) => {
    const { store } = await open(dir);
    await store.apply([service('a')]);
    const size = (await stat(join(dir, 'log.jsonl'))).size;
    assert.equal((await store.apply([service('a')]))[0]!.outcome, 'unchanged');
    assert.equal((await stat(join(dir, 'log.jsonl'))).size, size);
    await store.close();
  });
});

/** Three committed transactions, then the store closed; returns the log's path and its lines. */
async function threeTransactions(dir: string): Promise<{ log: string; lines: string[] }> {
  const { store } = await open(dir);
  await store.apply([service('a'), service('b')]);
  await store.apply([service('c')]);
  await store.delete([ref('a')]);
  await store.close();
  const log = join(dir, 'log.jsonl');
  const lines = (await readFile(log, 'utf8')).split('\n').slice(0, -1);
  assert.equal(lines.length, 3);
  return { log, lines };
}

test('a torn last record is ignored with a warning and cut off, so later writes stay readable', async () => {
  await withDir(async (dir) => {
    const { log, lines } = await threeTransactions(dir);
    const full = Buffer.byteLength(lines.join('\n') + '\n');
    await truncate(log, full - 10); // the last transaction (delete a) was never finished

    const { store, warnings } = await open(dir);
    assert.deepEqual(
      (await store.list('Service')).items.map((o) => o.metadata.name),
      ['a', 'b', 'c'],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /log\.jsonl line 3: ignored an unfinished record \(no line end, \d+ bytes\)/);
    await store.apply([service('d')]);
    await store.close();

    const { store: again, warnings: none } = await open(dir);
    assert.deepEqual(none, []);
    assert.deepEqual(
      (await again.list('Service')).items.map((o) => [o.metadata.name, o.metadata.resourceVersion]),
      [
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
        ['d', '4'],
      ],
    );
    await again.close();
  });
});

test('a corrupt last record is ignored with a warning; a corrupt record before valid ones fails the open', async () => {
  await withDir(async (dir) => {
    const { log, lines } = await threeTransactions(dir);
    const flipped = lines[2]!.replace('"name":"a"', '"name":"x"'); // same length, wrong checksum
    await writeFile(log, [lines[0], lines[1], flipped, ''].join('\n'));
    const { store, warnings } = await open(dir);
    assert.match(warnings[0]!, /line 3: ignored an unfinished record \(checksum mismatch/);
    assert.equal((await store.list('Service')).items.length, 3);
    await store.close();

    // Zeros where a crash left a block unwritten, at the end: ignored as well.
    await appendFile(log, Buffer.alloc(100));
    const { store: zeros, warnings: zeroWarnings } = await open(dir);
    assert.equal(zeroWarnings.length, 1);
    await zeros.close();

    await writeFile(log, [lines[0], flipped, lines[1], ''].join('\n'));
    await assert.rejects(open(dir), (err: Error) => {
      assert.ok(err instanceof StoreCorruptError);
      assert.equal(err.message, `${log} line 2: checksum mismatch, and valid records follow it: the log is corrupt`);
      return true;
    });
    // A failed open leaves the directory unlocked and unchanged.
    assert.deepEqual(await readdir(dir), ['log.jsonl']);
    assert.equal(await readFile(log, 'utf8'), [lines[0], flipped, lines[1], ''].join('\n'));

    await writeFile(log, [lines[0], lines[2], ''].join('\n'));
    await assert.rejects(open(dir), /log\.jsonl line 2: resourceVersion 4 where 3 was expected: the log is corrupt/);

    await writeFile(join(dir, 'snapshot.json'), '{"format":1,"resourceVersion":"3","objects":[');
    await assert.rejects(open(dir), /snapshot\.json: invalid JSON/);
  });
});

test('a store holds 10 000 objects and gets them back after a restart', async () => {
  await withDir(async (dir) => {
    const { store } = await open(dir);
    const objects = Array.from({ length: 10_000 }, (_, i) => service(`mirror-${String(i).padStart(5, '0')}`, { 'mirror.linkerd.io/mirrored-service': 'true', shard: String(i % 10) }));
    const results = await store.apply(objects);
    assert.equal(results.length, 10_000);
    for (let i = 0; i < 100; i++) await store.updateStatus(ref(`mirror-${String(i).padStart(5, '0')}`), { endpoints: i });
    assert.equal((await store.list('Service', { labelSelector: 'shard=3' })).items.length, 1000);
    await store.close();

    const { store: reopened } = await open(dir);
    const { items, resourceVersion } = await reopened.list('Service');
    assert.equal(items.length, 10_000);
    assert.equal(resourceVersion, '10100');
    assert.equal(items[0]!.metadata.name, 'mirror-00000');
    assert.deepEqual(items[42]!.status, { endpoints: 42 });
    await reopened.close();
  });
});
