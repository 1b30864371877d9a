// The keyed work queue every controller uses: coalescing, one batch at a time, retries with back-off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkQueue } from '../../../src/store/queue.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('keys marked in one turn are one batch, a key marked twice is worked on once', async () => {
  const batches: string[][] = [];
  const queue = new WorkQueue<string>({ process: (keys) => Promise.resolve(void batches.push(keys)) });
  queue.add('a');
  queue.add('b');
  queue.add('a');
  await queue.settled();
  assert.deepEqual(batches, [['a', 'b']]);
  await queue.stop();
});

test('a key marked while its batch runs waits for that batch: never two workers on one key', async () => {
  let running = 0;
  let most = 0;
  const batches: string[][] = [];
  const queue = new WorkQueue<string>({
    process: async (keys) => {
      most = Math.max(most, ++running);
      batches.push(keys);
      await sleep(10);
      running--;
    },
  });
  queue.add('a');
  while (running === 0) await sleep(1);
  queue.add('a');
  queue.add('b');
  await sleep(1);
  await queue.settled();
  assert.equal(most, 1);
  assert.deepEqual(batches, [['a'], ['a', 'b']]);
  await queue.stop();
});

test('failed keys are tried again after a back-off that doubles; returned keys alone, a throw all of them', async () => {
  const seen: { keys: string[]; at: number }[] = [];
  const errors: string[] = [];
  let calls = 0;
  const start = Date.now();
  const queue = new WorkQueue<string>({
    retry: { initialMs: 20, maxMs: 1000 },
    onError: (err) => errors.push(err.message),
    process: (keys) => {
      seen.push({ keys, at: Date.now() - start });
      calls++;
      if (calls === 1) return Promise.resolve(['b']);
      if (calls === 2) return Promise.reject(new Error('store down'));
      return Promise.resolve();
    },
  });
  queue.addAll(['a', 'b']);
  while (calls < 3) await sleep(5);
  await queue.settled();
  assert.deepEqual(seen.map((s) => s.keys), [['a', 'b'], ['b'], ['b']]);
  assert.deepEqual(errors, ['store down']);
  assert.ok(seen[1]!.at - seen[0]!.at >= 18, `first retry after ${seen[1]!.at - seen[0]!.at} ms`);
  assert.ok(seen[2]!.at - seen[1]!.at >= 38, `second retry after ${seen[2]!.at - seen[1]!.at} ms`);
  await queue.stop();
});

test('a paused queue holds its keys until start; a stopped one takes no more', async () => {
  const batches: string[][] = [];
  const queue = new WorkQueue<string>({ paused: true, process: (keys) => Promise.resolve(void batches.push(keys)) });
  queue.add('a');
  await sleep(5);
  assert.deepEqual(batches, []);
  queue.start();
  await queue.settled();
  assert.deepEqual(batches, [['a']]);
  await queue.stop();
  queue.add('b');
  await sleep(5);
  assert.deepEqual(batches, [['a']]);
});
