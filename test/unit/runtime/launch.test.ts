import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRunnable, containerLaunch, expandReferences, isLaunchProblem, podEnvironment, readinessPort } from '../../../src/runtime/launch.js';
import { restartDelayMs } from '../../../src/runtime/pods.js';
import type { Container, Pod } from '../../../src/runtime/pod-types.js';
import { processStartTicks, resolveCommand } from '../../../src/runtime/processes.js';

function pod(containers: Container[], extra: Partial<Pod['spec']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'sleep-5f8b9c7d46-x2k9q', namespace: 'sample', uid: 'u-1', labels: { app: 'sleep' }, annotations: { team: 'blue' } },
    spec: { containers, serviceAccountName: 'sleep', ...extra },
    status: { phase: 'Running', podIP: '127.20.1.7' },
  };
}

test('the restart back-off doubles from 1 s and stops at 30 s', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 50].map(restartDelayMs),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
  );
});

test('the pod environment has the pod variables, then the container env with fieldRefs and $(VAR)', () => {
  const env = podEnvironment(
    pod([
      {
        name: 'sleep',
        image: 'curlimages/curl',
        command: ['/bin/sleep', '3650d'],
        env: [
          { name: 'GREETING', value: 'hello $(POD_NAME) $$(POD_NAME) $(MISSING)' },
          { name: 'MY_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'MY_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'MY_APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'MY_TEAM', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['team']" } } },
          { name: 'POD_IP', value: 'overridden' },
        ],
      },
    ]),
  );
  assert.equal(env.POD_NAME, 'sleep-5f8b9c7d46-x2k9q');
  assert.equal(env.POD_NAMESPACE, 'sample');
  assert.equal(env.HOSTNAME, 'sleep-5f8b9c7d46-x2k9q');
  assert.equal(env.SERVICE_ACCOUNT, 'sleep');
  assert.equal(env.GREETING, 'hello sleep-5f8b9c7d46-x2k9q $(POD_NAME) $(MISSING)');
  assert.equal(env.MY_NAME, 'sleep-5f8b9c7d46-x2k9q');
  assert.equal(env.MY_NS, 'sample');
  assert.equal(env.MY_IP, '127.20.1.7');
  assert.equal(env.MY_APP, 'sleep');
  assert.equal(env.MY_TEAM, 'blue');
  assert.equal(env.POD_IP, 'overridden', 'the container env is applied last');
});

test('the image of a sample app sets its variables beneath the container env', () => {
  const env = podEnvironment(pod([{ name: 'reviews', image: 'docker.io/istio/examples-bookinfo-reviews-v3:1.20.3', env: [{ name: 'STAR_COLOR', value: 'green' }] }]));
  assert.equal(env.SERVICE_VERSION, 'v3');
  assert.equal(env.STAR_COLOR, 'green');
});

test('podEnvironment picks the named container and says which exist when it is missing', () => {
  const p = pod([
    { name: 'app', image: 'x', command: ['/bin/true'], env: [{ name: 'WHO', value: 'app' }] },
    { name: 'proxy', image: 'y', command: ['/bin/true'], env: [{ name: 'WHO', value: 'proxy' }] },
  ]);
  assert.equal(podEnvironment(p).WHO, 'app');
  assert.equal(podEnvironment(p, 'proxy').WHO, 'proxy');
  assert.throws(() => podEnvironment(p, 'nope'), /no container "nope"; it has: app, proxy/);
});

test('expandReferences follows Kubernetes: $(VAR), $$ escapes, unknown names kept', () => {
  assert.equal(expandReferences('$(A)-$(B)-$$(A)-$$-$(A', { A: '1', B: '2' }), '1-2-$(A)-$-$(A');
});

test('checkRunnable accepts a command found on this machine and a known sample image', () => {
  assert.deepEqual(checkRunnable({ containers: [{ name: 'sleep', image: 'curlimages/curl', command: ['/bin/sleep', '3650d'] }] }), []);
  assert.deepEqual(checkRunnable({ containers: [{ name: 'sh', image: 'busybox', command: ['sh', '-c', 'true'] }] }), []);
});

test('checkRunnable names the container and the reason for each problem', () => {
  const problems = checkRunnable({
    containers: [
      { name: 'app', image: 'example.com/unknown/app:1.0' },
      { name: 'tool', image: 'busybox', command: ['/bin/definitely-not-here'] },
      { name: 'bare', image: 'busybox', command: ['definitely-not-on-path'] },
      { name: 'bad-image', image: 'Not A Valid Image' },
      { name: 'secret', image: 'busybox', command: ['/bin/true'], env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
      { name: 'node', image: 'busybox', command: ['/bin/true'], env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }] },
    ],
  });
  assert.equal(problems.length, 6, problems.join('\n'));
  assert.match(problems[0]!, /^container "app": image "example\.com\/unknown\/app:1\.0" has no local sample and the container names no command; known images: .*docker\.io\/istio\/examples-helloworld-v1/);
  assert.equal(problems[1], 'container "tool": command "/bin/definitely-not-here" not found');
  assert.equal(problems[2], 'container "bare": command "definitely-not-on-path" not found in PATH');
  assert.match(problems[3]!, /^container "bad-image": invalid image reference/);
  assert.match(problems[4]!, /^container "secret": env TOKEN: valueFrom\.secretKeyRef is not supported/);
  assert.match(problems[5]!, /^container "node": env NODE: fieldRef "spec\.nodeName" is not supported/);
});

test('a launch runs the command with its arguments expanded, in an environment of only PATH, HOME and the pod’s', () => {
  const launch = containerLaunch(
    pod([{ name: 'c', image: 'busybox', command: ['sh', '-c'], args: ['echo $(GREETING)'], env: [{ name: 'GREETING', value: 'hi' }] }]),
    { name: 'c', image: 'busybox', command: ['sh', '-c'], args: ['echo $(GREETING)'], env: [{ name: 'GREETING', value: 'hi' }] },
    '127.20.1.9',
  );
  assert.ok(!isLaunchProblem(launch));
  assert.equal(launch.executable, resolveCommand('sh'));
  assert.deepEqual(launch.args, ['-c', 'echo hi']);
  assert.equal(launch.env.POD_IP, '127.20.1.9');
  assert.deepEqual(Object.keys(launch.env).filter((k) => !['PATH', 'HOME', 'POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'HOSTNAME', 'SERVICE_ACCOUNT', 'GREETING'].includes(k)), []);
});

test('a sample image launches node with the sample script; an unknown one is ErrImagePull', () => {
  const sample = containerLaunch(pod([]), { name: 'hw', image: 'docker.io/istio/examples-helloworld-v2' }, '127.20.1.9');
  if (isLaunchProblem(sample)) {
    // Only when the samples are not built yet; the message says so.
    assert.match(sample.message, /is not built/);
  } else {
    assert.equal(sample.executable, process.execPath);
    assert.match(sample.args[0]!, /samples\/helloworld\.js$/);
    assert.equal(sample.env.SERVICE_VERSION, 'v2');
  }
  const unknown = containerLaunch(pod([]), { name: 'x', image: 'haproxy' }, '127.20.1.9');
  assert.ok(isLaunchProblem(unknown));
  assert.equal(unknown.reason, 'ErrImagePull');
  const missing = containerLaunch(pod([]), { name: 'x', image: 'haproxy', command: ['/nope/nothing'] }, '127.20.1.9');
  assert.ok(isLaunchProblem(missing));
  assert.equal(missing.reason, 'RunContainerError');
});

test('readiness is probed on the probe port, else the first TCP port, else the sample port', () => {
  assert.equal(readinessPort({ name: 'a', image: 'x', command: ['x'], ports: [{ containerPort: 53, protocol: 'UDP' }, { containerPort: 8080, protocol: 'TCP' }] }), 8080);
  assert.equal(readinessPort({ name: 'a', image: 'x', command: ['x'], ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'admin', containerPort: 9090, protocol: 'TCP' }], readinessProbe: { httpGet: { port: 'admin' } } }), 9090);
  assert.equal(readinessPort({ name: 'a', image: 'x', command: ['x'], readinessProbe: { tcpSocket: { port: 7000 } } }), 7000);
  assert.equal(readinessPort({ name: 'a', image: 'x', command: ['x'] }), undefined);
  assert.equal(readinessPort({ name: 'a', image: 'docker.io/istio/examples-helloworld-v1' }), 5000);
});

test('commands are looked up in PATH or taken as paths; a process start time is read from /proc', () => {
  assert.equal(resolveCommand('/bin/sleep'), '/bin/sleep');
  assert.match(resolveCommand('sleep', '/nonexistent:/usr/bin:/bin') ?? '', /\/(usr\/)?bin\/sleep$/);
  assert.equal(resolveCommand('sleep', '/nonexistent'), undefined);
  assert.equal(resolveCommand('/etc/passwd'), undefined, 'not executable');
  assert.equal(resolveCommand('/bin'), undefined, 'a directory');
  assert.equal(resolveCommand(''), undefined);
  assert.match(processStartTicks(process.pid) ?? '', /^\d+$/);
  assert.equal(processStartTicks(2 ** 22 + 12345), undefined);
});
