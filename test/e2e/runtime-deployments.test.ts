// Deployments run as real processes: replicas on their own loopback addresses, scaling, restarts
// with back-off, rolling updates, and deletion (of the Deployment or of its namespace).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Deployment, Pod } from '../../src/runtime/pod-types.js';
import { podDirectory } from '../../src/runtime/pod-runner.js';
import { SAFE_ALPHABET } from '../../src/runtime/templates.js';
import { startWorkloadController } from '../../src/runtime/workloads.js';
import { deployment, httpGet, isRunning, serverContainer, startRuntime, waitFor } from './runtime-harness.js';

// Cluster indexes no other test uses, so these pods' addresses (127.(20+i).x.y) are their own.
const INDEX = 201;

test('a Deployment of 2 replicas runs 2 processes on distinct addresses answering on the same port; it scales to 3 and to 0', async (t) => {
  const rt = await startRuntime(t, INDEX);
  await rt.store.apply([deployment('hello', 2, [serverContainer(8080)])]);
  const pods = await rt.readyPods(2);

  const ips = pods.map((p) => p.status!.podIP!);
  assert.equal(new Set(ips).size, 2);
  for (const ip of ips) assert.match(ip, /^127\.221\.\d+\.\d+$/);
  for (const pod of pods) {
    assert.match(pod.metadata.name, new RegExp(`^hello-[${SAFE_ALPHABET}]{9,10}-[${SAFE_ALPHABET}]{5}$`));
    assert.equal(pod.metadata.labels?.['pod-template-hash'], pod.metadata.name.split('-')[1]);
    assert.equal(pod.metadata.ownerReferences?.[0]?.kind, 'Deployment');
    assert.equal(pod.spec?.serviceAccountName, 'default');
    const answer = await httpGet(`http://${pod.status!.podIP}:8080/`);
    assert.equal(answer.body, `${pod.metadata.name} ${pod.status!.podIP}`);
    const status = pod.status!.containerStatuses![0]!;
    assert.equal(status.ready, true);
    assert.equal(status.restartCount, 0);
    assert.ok(status.state?.running?.startedAt);
    assert.ok(isRunning(rt.record(pod, 'server')));
  }
  const status = await waitFor('deployment status 2/2', async () => {
    const d = (await rt.store.get({ kind: 'Deployment', namespace: 'default', name: 'hello' })) as Deployment;
    return d.status?.readyReplicas === 2 ? d.status : undefined;
  });
  assert.deepEqual(
    { replicas: status.replicas, updatedReplicas: status.updatedReplicas, availableReplicas: status.availableReplicas, observedGeneration: status.observedGeneration },
    { replicas: 2, updatedReplicas: 2, availableReplicas: 2, observedGeneration: 1 },
  );

  await rt.store.apply([deployment('hello', 3, [serverContainer(8080)])]);
  const three = await rt.readyPods(3);
  assert.ok(pods.every((p) => three.some((q) => q.metadata.uid === p.metadata.uid)), 'scaling up keeps the running pods');
  assert.equal(new Set(three.map((p) => p.status!.podIP)).size, 3);

  const records = three.map((p) => rt.record(p, 'server'));
  await rt.store.apply([deployment('hello', 0, [serverContainer(8080)])]);
  await rt.readyPods(0);
  await waitFor('every pod process to exit', () => (records.some(isRunning) ? undefined : true));
  for (const p of three) {
    await waitFor(`pod dir of ${p.metadata.name} removed`, () => (existsSync(podDirectory(rt.dir, 'default', p.metadata.name)) ? undefined : true));
  }
  const scaledDown = (await rt.store.get({ kind: 'Deployment', namespace: 'default', name: 'hello' })) as Deployment;
  assert.equal(scaledDown.status?.replicas, 0);
});

test('a killed pod process is restarted, its restart count rising; a crashing command goes to CrashLoopBackOff', async (t) => {
  const rt = await startRuntime(t, INDEX + 1);
  await rt.store.apply([
    deployment('steady', 1, [serverContainer(8080)]),
    deployment('crashy', 1, [{ name: 'crash', image: 'busybox', command: ['/bin/sh', '-c', 'echo about to fail; exit 3'] }]),
  ]);
  const [pod] = await waitFor('steady ready', async () => {
    const pods = (await rt.pods()).filter((p) => p.metadata.labels?.app === 'steady' && p.status?.containerStatuses?.[0]?.ready);
    return pods.length === 1 ? pods : undefined;
  });
  const before = rt.record(pod!, 'server')!;
  process.kill(before.pid, 'SIGKILL');

  const restarted = await waitFor('the steady pod restarted and ready', async () => {
    const p = (await rt.store.get({ kind: 'Pod', namespace: 'default', name: pod!.metadata.name })) as Pod;
    const s = p.status?.containerStatuses?.[0];
    return s?.restartCount === 1 && s.ready ? p : undefined;
  });
  const after = rt.record(restarted, 'server')!;
  assert.notEqual(after.pid, before.pid);
  assert.ok(isRunning(after));
  assert.equal(restarted.status?.podIP, pod!.status?.podIP, 'a restarted container keeps the pod address');
  const last = restarted.status!.containerStatuses![0]!.lastState?.terminated;
  assert.equal(last?.exitCode, 137);
  assert.equal(last?.signal, 9);
  assert.equal((await httpGet(`http://${restarted.status!.podIP}:8080/`)).body.split(' ')[0], pod!.metadata.name);

  const crashing = await waitFor('CrashLoopBackOff', async () => {
    const p = (await rt.pods()).find((x) => x.metadata.labels?.app === 'crashy');
    const s = p?.status?.containerStatuses?.[0];
    return s?.state?.waiting?.reason === 'CrashLoopBackOff' && s.restartCount >= 1 ? p : undefined;
  });
  const s = crashing.status!.containerStatuses![0]!;
  assert.equal(s.ready, false);
  assert.equal(s.lastState?.terminated?.exitCode, 3);
  assert.equal(s.lastState?.terminated?.reason, 'Error');
  assert.match(s.state!.waiting!.message!, /back-off 2s restarting failed container=crash/);
  assert.equal(crashing.status?.phase, 'Running');
  assert.match(rt.log(crashing, 'crash'), /about to fail\n.*about to fail/s);
});

test('a pod whose image has no sample and no command does not start, and its status says why', async (t) => {
  const rt = await startRuntime(t, INDEX + 2);
  await rt.store.apply([deployment('billing', 1, [{ name: 'billing', image: 'registry.example.com/team/billing:1.4' }])]);
  const pod = await waitFor('ErrImagePull', async () => {
    const p = (await rt.pods())[0];
    return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull' ? p : undefined;
  });
  assert.equal(pod.status?.phase, 'Pending');
  assert.match(pod.status.containerStatuses![0]!.state!.waiting!.message!, /image "registry\.example\.com\/team\/billing:1\.4" has no local sample and the container names no command; known images: /);
  assert.equal(rt.record(pod, 'billing'), undefined);
});

test('a template change rolls: new pods first, the old removed once the new are ready', async (t) => {
  const rt = await startRuntime(t, INDEX + 3);
  await rt.store.apply([deployment('roll', 2, [serverContainer(8080)])]);
  const old = await rt.readyPods(2);
  const oldHash = old[0]!.metadata.labels!['pod-template-hash'];

  // Watch what happens to the pods: no old pod may go before a new one is ready.
  const events: string[] = [];
  const watch = rt.store.watch({ kind: 'Pod' }, (e) => {
    const p = e.object as Pod;
    const isNew = p.metadata.labels?.['pod-template-hash'] !== oldHash;
    const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (e.type === 'DELETED' && !isNew) events.push('old-deleted');
    if (e.type !== 'DELETED' && isNew && ready && !events.includes(`ready:${p.metadata.name}`)) events.push(`ready:${p.metadata.name}`);
  });
  await rt.store.apply([deployment('roll', 2, [{ ...serverContainer(8080), env: [{ name: 'PORT', value: '8080' }, { name: 'VERSION', value: '2' }] }])]);
  const rolled = await waitFor('only new pods, all ready', async () => {
    const pods = await rt.pods();
    const ready = pods.filter((p) => p.metadata.labels?.['pod-template-hash'] !== oldHash && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return pods.length === 2 && ready.length === 2 ? pods : undefined;
  });
  watch.stop();
  assert.ok(rolled.every((p) => !old.some((o) => o.metadata.uid === p.metadata.uid)));
  const firstDelete = events.indexOf('old-deleted');
  assert.ok(firstDelete > 0 && events.slice(0, firstDelete).some((e) => e.startsWith('ready:')), `events: ${events.join(', ')}`);
  for (const p of old) await waitFor(`old pod ${p.metadata.name} stopped`, () => (isRunning(rt.record(p, 'server')) ? undefined : true));
  const d = await waitFor('status updated', async () => {
    const x = (await rt.store.get({ kind: 'Deployment', namespace: 'default', name: 'roll' })) as Deployment;
    return x.status?.updatedReplicas === 2 && x.status.replicas === 2 && x.status.readyReplicas === 2 ? x : undefined;
  });
  assert.equal(d.status?.observedGeneration, 2);
});

test('deleting a Deployment stops its processes; deleting a Namespace deletes everything in it', async (t) => {
  const rt = await startRuntime(t, INDEX + 4);
  await rt.store.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } },
    deployment('one', 1, [serverContainer(8080)], 'team'),
    deployment('two', 2, [serverContainer(8080)], 'team'),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'robot', namespace: 'team' } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'one', namespace: 'team' }, spec: { selector: { app: 'one' }, ports: [{ port: 80, targetPort: 8080 }] } },
  ]);
  const pods = await rt.readyPods(3, 'team');
  const one = pods.filter((p) => p.metadata.labels?.app === 'one');
  const two = pods.filter((p) => p.metadata.labels?.app === 'two');

  await rt.store.delete([{ kind: 'Deployment', namespace: 'team', name: 'one' }]);
  await waitFor('pods of "one" deleted', async () => ((await rt.pods('team')).some((p) => p.metadata.labels?.app === 'one') ? undefined : true));
  await waitFor('processes of "one" stopped', () => (one.some((p) => isRunning(rt.record(p, 'server'))) ? undefined : true));
  assert.ok(two.every((p) => isRunning(rt.record(p, 'server'))), 'the other deployment is untouched');

  const twoRecords = two.map((p) => rt.record(p, 'server'));
  await rt.store.delete([{ kind: 'Namespace', name: 'team' }]);
  await waitFor('namespace emptied', async () => {
    for (const kind of ['Deployment', 'Pod', 'ServiceAccount', 'Service']) if ((await rt.store.list(kind, { namespace: 'team' })).items.length > 0) return undefined;
    return true;
  });
  await waitFor('processes of "two" stopped', () => (twoRecords.some(isRunning) ? undefined : true));
});

test('a pod relabelled out of its selector is released and replaced', async (t) => {
  const rt = await startRuntime(t, INDEX + 5);
  await rt.store.apply([deployment('keep', 1, [serverContainer(8080)])]);
  const [pod] = await rt.readyPods(1);
  await rt.store.apply([{ ...pod!, metadata: { ...pod!.metadata, resourceVersion: undefined, labels: { app: 'debugging' } } }]);
  const pods = await waitFor('a replacement beside the released pod', async () => {
    const all = await rt.pods();
    return all.length === 2 && all.some((p) => p.metadata.labels?.app === 'keep') ? all : undefined;
  });
  const released = pods.find((p) => p.metadata.uid === pod!.metadata.uid)!;
  assert.deepEqual(released.metadata.ownerReferences, undefined);
});

test('the guide’s helloworld and sleep Deployments run: the sample app for the image, the command for sleep', async (t) => {
  const rt = await startRuntime(t, INDEX + 6);
  const hello = deployment('helloworld-v1', 2, [{ name: 'helloworld', image: 'docker.io/istio/examples-helloworld-v1', ports: [{ containerPort: 5000, protocol: 'TCP' }] }]);
  const sleep = deployment('sleep', 1, [{ name: 'sleep', image: 'curlimages/curl', command: ['/bin/sleep', '3650d'] }]);
  await rt.store.apply([hello, sleep]);
  const pods = await rt.readyPods(3);
  for (const pod of pods.filter((p) => p.metadata.labels?.app === 'helloworld-v1')) {
    const answer = await httpGet(`http://${pod.status!.podIP}:5000/hello`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.trim(), `Hello version: v1, instance: ${pod.metadata.name}`);
  }
  const sleeper = pods.find((p) => p.metadata.labels?.app === 'sleep')!;
  assert.equal(sleeper.status?.containerStatuses?.[0]?.ready, true);
  assert.deepEqual(readFileSync(`/proc/${rt.record(sleeper, 'sleep')!.pid}/cmdline`, 'utf8').split('\0'), ['/bin/sleep', '3650d', '']);
});

test('a Deployment whose selector does not match its template makes no pods (instead of making them without end)', async (t) => {
  const rt = await startRuntime(t, INDEX + 7, { controller: false });
  const bad = deployment('bad', 2, [serverContainer(8080)]);
  (bad.spec as { selector: unknown }).selector = { matchLabels: { app: 'other' } };
  await rt.store.apply([bad, deployment('good', 1, [serverContainer(8080)])]);
  rt.controller = await startWorkloadController(rt.store);
  // The first pass over every owner is done when the controller has started.
  assert.deepEqual((await rt.pods()).map((p) => p.metadata.labels?.app), ['good']);
});
