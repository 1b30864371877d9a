import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalStore } from '../../../src/store/local.js';
import { gracePeriodMs, LOG_ROTATE_BYTES, PodRunner } from '../../../src/runtime/pod-runner.js';
import type { Pod } from '../../../src/runtime/pod-types.js';
import { podLogPath } from '../../../src/runtime/pods.js';
import { silentLog } from '../../../src/runtime/log.js';

function pod(spec: Partial<Pod['spec']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'default', uid: 'u-1' },
    spec: { containers: [{ name: 'app', image: 'x', command: ['/bin/true'] }, { name: 'proxy', image: 'y', command: ['/bin/true'] }], ...spec },
  };
}

test('the grace period between SIGTERM and SIGKILL is the pod’s, at most 5 s', () => {
  assert.equal(gracePeriodMs(pod()), 5000);
  assert.equal(gracePeriodMs(pod({ terminationGracePeriodSeconds: 2 })), 2000);
  assert.equal(gracePeriodMs(pod({ terminationGracePeriodSeconds: 0 })), 0);
  assert.equal(gracePeriodMs(pod({ terminationGracePeriodSeconds: 600 })), 5000);
});

test('a new pod’s status is Pending with its address, every container waiting in ContainerCreating', async () => {
  const store = LocalStore.memory();
  const runner = new PodRunner(pod(), '127.20.1.5', { store, clusterDir: '/nonexistent', log: silentLog });
  const status = runner.status();
  assert.equal(status.phase, 'Pending');
  assert.equal(status.podIP, '127.20.1.5');
  assert.deepEqual(status.podIPs, [{ ip: '127.20.1.5' }]);
  assert.deepEqual(status.conditions?.map((c) => `${c.type}=${c.status}`), ['PodScheduled=True', 'Initialized=True', 'ContainersReady=False', 'Ready=False']);
  assert.deepEqual(status.containerStatuses?.map((c) => [c.name, c.ready, c.restartCount, c.state?.waiting?.reason]), [
    ['app', false, 0, 'ContainerCreating'],
    ['proxy', false, 0, 'ContainerCreating'],
  ]);
  await store.close();
});

test('a container log over the limit is copied to .1 and emptied; a small one is left alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strait-logs-'));
  const store = LocalStore.memory();
  try {
    const runner = new PodRunner(pod(), '127.20.1.5', { store, clusterDir: dir, log: silentLog });
    const big = podLogPath(dir, 'default', 'web-0', 'app');
    const small = podLogPath(dir, 'default', 'web-0', 'proxy');
    mkdirSync(runner.dir, { recursive: true });
    writeFileSync(big, Buffer.alloc(LOG_ROTATE_BYTES + 1, 'a'));
    writeFileSync(small, 'hello\n');
    runner.rotateLogs();
    assert.equal(statSync(big).size, 0);
    assert.equal(statSync(big + '.1').size, LOG_ROTATE_BYTES + 1);
    assert.equal(readFileSync(small, 'utf8'), 'hello\n');
    assert.throws(() => statSync(small + '.1'));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
