// The local store across real processes: the directory lock, and a writer killed with SIGKILL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../../../src/api/types.js';
import { LocalStore, StoreLockedError } from '../../../src/store/local.js';
import { counterOf, itemsOf } from './store-process.js';

const HELPER = fileURLToPath(new URL('./store-process.ts', import.meta.url));

/** Starts the helper and calls `onLine` for each line it prints. */
function startHelper(args: string[], onLine: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', HELPER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout }).on('line', onLine);
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'strait-store-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a store opened by a live process is locked; once that process is dead its lock is taken over', async () => {
  await withDir(async (dir) => {
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    const holder = startHelper(['hold', dir], (line) => line === 'ready' && ready());
    try {
      await started;
      await assert.rejects(LocalStore.open(dir), (err: Error) => {
        assert.ok(err instanceof StoreLockedError);
        assert.equal(err.message, `store ${dir} is locked by process ${holder.pid}`);
        return true;
      });
    } finally {
      await kill(holder);
    }
    const warnings: string[] = [];
    const store = await LocalStore.open(dir, { warn: (m) => void warnings.push(m) });
    assert.deepEqual(warnings, [`store ${dir}: took over the lock left by process ${holder.pid}, which is no longer running`]);
    assert.equal(await readFile(join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
    await store.close();
    assert.deepEqual(await readdir(dir), ['log.jsonl'], 'close releases the lock');
  });
});

test('one process cannot open a store twice; a lock naming no live process is stale', async () => {
  await withDir(async (dir) => {
    const store = await LocalStore.open(dir);
    await assert.rejects(LocalStore.open(dir), new RegExp(`StoreLockedError: store ${dir} is locked by process ${process.pid}$`));
    await store.close();

    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    for (const content of [`${dead}\n`, '', 'garbage']) {
      await writeFile(join(dir, 'lock'), content);
      const warnings: string[] = [];
      const again = await LocalStore.open(dir, { warn: (m) => void warnings.push(m) });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /took over the lock left by process/);
      await again.close();
    }
  });
});

/** The state that the first `committed` ops of the helper's stream leave in namespace `ns`. */
function expectedAfter(committed: number, ns: string): Map<string, Resource> {
  const state = new Map<string, Resource>();
  for (let s = 0; s < committed; s++) {
    if (s % 2 === 0) {
      for (const o of [...itemsOf(s, ns), counterOf(s, ns)]) state.set(`${o.kind}/${o.metadata.name}`, o);
    } else if (s >= 3) {
      for (const o of itemsOf(s - 3, ns)) state.delete(`${o.kind}/${o.metadata.name}`);
    }
  }
  return state;
}

test('a writer killed with SIGKILL mid-stream loses no acknowledged write and leaves no partial transaction', async () => {
  await withDir(async (dir) => {
    const uids = new Map<string, string>(); // acknowledged objects: key -> "uid@resourceVersion"
    const earlierRounds = new Map<string, string>(); // namespace -> its objects as the round left them
    const dump = async (store: LocalStore, ns: string) =>
      JSON.stringify([...(await store.list('Item', { namespace: ns })).items, ...(await store.list('Counter', { namespace: ns })).items]);
    for (const [round, killAfter] of [120, 250, 400].entries()) {
      const ns = `round-${round}`;
      const acked: number[] = [];
      let enough!: () => void;
      const reached = new Promise<void>((resolve) => (enough = resolve));
      const writer = startHelper(['write', dir, ns], (line) => {
        const m = /^ack (\d+) (.*)$/.exec(line);
        if (!m) return;
        const s = Number(m[1]);
        acked.push(s);
        if (s % 2 === 0) {
          const results = JSON.parse(m[2]!) as [string, string][];
          [...itemsOf(s, ns), counterOf(s, ns)].forEach((o, i) => uids.set(`${ns}/${o.kind}/${o.metadata.name}/${s}`, results[i]!.join('@')));
        }
        if (acked.length === killAfter) enough();
      });
      try {
        await reached;
      } finally {
        await kill(writer);
      }

      const store = await LocalStore.open(dir, { warn: () => undefined });
      try {
        const items = (await store.list('Item', { namespace: ns })).items;
        const counter = (await store.list('Counter', { namespace: ns })).items[0]!;
        const lastApply = (counter.spec as { s: number }).s;
        // Commits follow the call order, so what is stored is the first n ops: every op up to the
        // counter's, and perhaps the delete right after it.
        const actual = new Map([...items, counter].map((o) => [`${o.kind}/${o.metadata.name}`, o]));
        const strip = (o: Resource) => ({ kind: o.kind, name: o.metadata.name, labels: o.metadata.labels, spec: o.spec });
        const same = (expected: Map<string, Resource>) =>
          expected.size === actual.size && [...expected].every(([key, o]) => actual.has(key) && JSON.stringify(strip(actual.get(key)!)) === JSON.stringify(strip(o)));
        const committed = [lastApply + 1, lastApply + 2].find((n) => same(expectedAfter(n, ns)));
        assert.ok(committed !== undefined, `round ${round}: the stored state is not that of a prefix of the stream (counter at op ${lastApply})`);
        assert.ok(Math.max(...acked) < committed, `round ${round}: op ${Math.max(...acked)} was acknowledged but is not stored (stored: ${committed} ops)`);
        assert.ok(committed > killAfter / 2, 'the writer was killed in the middle of its stream');
        // Every acknowledged object still stored has the uid and resourceVersion it was acknowledged with.
        for (const o of [...items, counter]) {
          const s = o.kind === 'Counter' ? lastApply : (o.spec as { s: number }).s;
          const ackedAs = uids.get(`${ns}/${o.kind}/${o.metadata.name}/${s}`);
          if (ackedAs) assert.equal(`${o.metadata.uid}@${o.metadata.resourceVersion}`, ackedAs);
        }
        for (const [earlier, objects] of earlierRounds) assert.equal(await dump(store, earlier), objects, `${earlier} is as it was`);
        earlierRounds.set(ns, await dump(store, ns));
      } finally {
        await store.close();
      }
    }
  });
});
