// The pod supervisor across its own restarts: running pods are adopted (not started twice), dead
// ones restarted, deleted ones stopped; and nothing is left behind when pods are stopped.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Resource } from '../../src/api/types.js';
import { podDirectory } from '../../src/runtime/pod-runner.js';
import type { Container, Pod } from '../../src/runtime/pod-types.js';
import { killRecordedProcesses } from '../../src/runtime/pods.js';
import { httpGet, isRunning, serverContainer, startRuntime, waitFor, type Runtime } from './runtime-harness.js';

const INDEX = 221;

function pod(name: string, containers: Container[], spec: Record<string, unknown> = {}): Resource {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { containers, ...spec } };
}

async function getPod(rt: Runtime, name: string): Promise<Pod | undefined> {
  return (await rt.store.get({ kind: 'Pod', namespace: 'default', name })) as Pod | undefined;
}

test('a restarted supervisor adopts running pods (same process, no restart) and watches them', async (t) => {
  const rt = await startRuntime(t, INDEX, { controller: false });
  await rt.store.apply([pod('server', [serverContainer(8080)]), pod('sleeper', [{ name: 'sleep', image: 'curlimages/curl', command: ['/bin/sleep', '3650d'] }])]);
  const [server, sleeper] = await rt.readyPods(2);
  const serverRecord = rt.record(server!, 'server')!;
  const sleeperRecord = rt.record(sleeper!, 'sleep')!;

  await rt.stopSupervisor(false);
  assert.ok(isRunning(serverRecord) && isRunning(sleeperRecord), 'stopPods: false leaves the pods running');
  await rt.startSupervisor();

  const pods = await rt.readyPods(2);
  for (const p of pods) {
    const container = p.spec!.containers[0]!.name;
    assert.equal(rt.record(p, container)!.pid, (container === 'server' ? serverRecord : sleeperRecord).pid);
    assert.equal(p.status?.containerStatuses?.[0]?.restartCount, 0);
  }
  const adopted = pods.find((p) => p.metadata.name === 'server')!;
  assert.equal(adopted.status?.podIP, server!.status?.podIP, 'the pod keeps its address');
  assert.equal(adopted.status?.containerStatuses?.[0]?.state?.running?.startedAt, server!.status?.containerStatuses?.[0]?.state?.running?.startedAt);
  assert.equal((await httpGet(`http://${adopted.status!.podIP}:8080/`)).body, `server ${adopted.status!.podIP}`);

  // The adopted process is watched: when it dies, it is restarted.
  process.kill(serverRecord.pid, 'SIGKILL');
  const restarted = await waitFor('the adopted server restarted', async () => {
    const p = await getPod(rt, 'server');
    const s = p?.status?.containerStatuses?.[0];
    return s?.restartCount === 1 && s.ready ? p : undefined;
  });
  assert.equal(restarted.status?.containerStatuses?.[0]?.lastState?.terminated?.reason, 'ContainerStatusUnknown');
  assert.notEqual(rt.record(restarted, 'server')!.pid, serverRecord.pid);
});

test('on start, the supervisor restarts pods whose process died and stops those whose Pod was deleted meanwhile', async (t) => {
  const rt = await startRuntime(t, INDEX + 1, { controller: false });
  await rt.store.apply([pod('stays', [serverContainer(8080)]), pod('goes', [serverContainer(8080)])]);
  const [goes, stays] = await rt.readyPods(2);
  const goesRecord = rt.record(goes!, 'server')!;
  const staysRecord = rt.record(stays!, 'server')!;

  await rt.stopSupervisor(false);
  await rt.store.delete([{ kind: 'Pod', namespace: 'default', name: 'goes' }]);
  process.kill(staysRecord.pid, 'SIGKILL');
  await waitFor('the killed process gone', () => (isRunning(staysRecord) ? undefined : true));
  await rt.startSupervisor();

  assert.equal(isRunning(goesRecord), false, 'the deleted pod’s process is stopped before start resolves');
  assert.equal(existsSync(podDirectory(rt.dir, 'default', 'goes')), false);
  const restarted = await waitFor('the dead pod restarted', async () => {
    const p = await getPod(rt, 'stays');
    const s = p?.status?.containerStatuses?.[0];
    return s?.restartCount === 1 && s.ready ? p : undefined;
  });
  assert.deepEqual((await rt.pods()).map((p) => p.metadata.name), ['stays']);
  assert.equal(restarted.status?.podIP, stays!.status?.podIP);
  assert.notEqual(rt.record(restarted, 'server')!.pid, staysRecord.pid);
});

test('stop with stopPods waits for every process; killRecordedProcesses stops pods left running by a dead control plane', async (t) => {
  const rt = await startRuntime(t, INDEX + 2, { controller: false });
  await rt.store.apply([pod('a', [serverContainer(8080)]), pod('b', [serverContainer(8080), { name: 'side', image: 'x', command: ['/bin/sleep', '3650d'] }])]);
  let pods = await rt.readyPods(2);
  const records = pods.flatMap((p) => p.spec!.containers.map((c) => rt.record(p, c.name)!));
  assert.equal(records.length, 3);
  assert.equal(pods.find((p) => p.metadata.name === 'b')!.status!.containerStatuses!.length, 2);

  await rt.stopSupervisor(true);
  assert.deepEqual(records.filter(isRunning), [], 'stop({stopPods: true}) returns once every process is gone');

  await rt.startSupervisor();
  pods = await rt.readyPods(2);
  const again = pods.flatMap((p) => p.spec!.containers.map((c) => rt.record(p, c.name)!));
  await rt.stopSupervisor(false);
  assert.equal(again.filter(isRunning).length, 3);
  assert.equal(await killRecordedProcesses(rt.dir), 3);
  assert.deepEqual(again.filter(isRunning), []);
  assert.equal(await killRecordedProcesses(rt.dir), 0, 'a second call finds nothing');
});

test('a deleted pod’s whole process group is stopped, with SIGKILL after its grace period; a crashed container’s leftovers go too', async (t) => {
  const rt = await startRuntime(t, INDEX + 3, { controller: false });
  // Ignores SIGTERM, and has a child of its own in its process group.
  const stubborn = "trap '' TERM; sleep 3650 & echo $! > child.pid; while :; do sleep 0.1; done";
  // Leaves a child behind when it exits.
  const leaver = 'sleep 3650 & echo $! > child.pid; sleep 0.5; exit 1';
  await rt.store.apply([
    pod('stubborn', [{ name: 'sh', image: 'busybox', command: ['/bin/sh', '-c', stubborn] }], { terminationGracePeriodSeconds: 1 }),
    pod('leaver', [{ name: 'sh', image: 'busybox', command: ['/bin/sh', '-c', leaver] }], { restartPolicy: 'Never' }),
  ]);
  const childOf = (name: string) =>
    waitFor(`${name}'s child pid`, () => {
      try {
        const pid = Number(readFileSync(join(podDirectory(rt.dir, 'default', name), 'child.pid'), 'utf8'));
        return pid > 0 ? pid : undefined;
      } catch {
        return undefined;
      }
    });
  const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

  const leaverChild = await childOf('leaver');
  const failed = await waitFor('leaver Failed', async () => {
    const p = await getPod(rt, 'leaver');
    return p?.status?.phase === 'Failed' ? p : undefined;
  });
  assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);
  await waitFor('the leaver’s child killed', () => (alive(leaverChild) ? undefined : true));

  const stubbornChild = await childOf('stubborn');
  const [stubbornPod] = (await rt.pods()).filter((p) => p.metadata.name === 'stubborn');
  const record = rt.record(stubbornPod!, 'sh')!;
  const started = Date.now();
  await rt.store.delete([{ kind: 'Pod', namespace: 'default', name: 'stubborn' }]);
  await waitFor('the stubborn pod killed', () => (isRunning(record) || alive(stubbornChild) ? undefined : true), 10_000);
  assert.ok(Date.now() - started >= 900, 'SIGKILL only after the grace period');
});

test('a pod bound to another node gets no process and its status is left alone; unbound pods and pods bound to this node run', async (t) => {
  const rt = await startRuntime(t, INDEX + 4, { controller: false });
  // The harness's cluster is named "test", and so is its one node.
  const sleeper = (name: string, nodeName?: string) => pod(name, [{ name: 'sleep', image: 'x', command: ['/bin/sleep', '3650d'] }], nodeName ? { nodeName } : {});
  await rt.store.apply([sleeper('elsewhere', 'node-2')]);
  // What the other node's kubelet reports.
  const reported = { phase: 'Running', podIP: '10.1.2.3', conditions: [{ type: 'Ready', status: 'True' }] };
  await rt.store.updateStatus({ kind: 'Pod', namespace: 'default', name: 'elsewhere' }, reported);
  await rt.store.apply([sleeper('here', 'test'), sleeper('unbound')]);
  await waitFor('here and unbound ready', async () => ((await rt.pods()).filter((p) => p.status?.phase === 'Running' && p.status.podIP?.startsWith('127.')).length === 2 ? true : undefined));

  const untouched = async () => {
    const elsewhere = (await getPod(rt, 'elsewhere'))!;
    assert.deepEqual(elsewhere.status, reported);
    assert.equal(existsSync(podDirectory(rt.dir, 'default', 'elsewhere')), false, 'no pod directory, no process');
  };
  await untouched();

  // Neither a change to the pod nor a restarted supervisor makes it ours. Watch events are handled in
  // order, so once a pod applied afterwards runs, the change has been seen.
  await rt.stopSupervisor(false);
  await rt.startSupervisor();
  await rt.store.apply([{ ...sleeper('elsewhere', 'node-2'), metadata: { name: 'elsewhere', namespace: 'default', labels: { changed: 'yes' } } }, sleeper('later')]);
  await waitFor('later running', async () => ((await getPod(rt, 'later'))?.status?.phase === 'Running' ? true : undefined));
  await untouched();
  assert.deepEqual((await rt.pods()).filter((p) => existsSync(podDirectory(rt.dir, 'default', p.metadata.name))).map((p) => p.metadata.name), ['here', 'later', 'unbound']);
});
