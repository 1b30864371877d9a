// Manifest validation: the guides' real manifests pass with Kubernetes' defaults; every kind of bad
// input is rejected with the file, the document, the object, the field and the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifests } from '../../../src/api/codec.js';
import { ignoredFields } from '../../../src/api/fields.js';
import type { ManifestIssue } from '../../../src/api/issues.js';
import type { Deployment, Pod, Service, ServiceProfile, StatefulSet, TrafficSplit } from '../../../src/api/kinds.js';
import { matchesSelector } from '../../../src/api/labels.js';
import type { Resource } from '../../../src/api/types.js';
import { validateDocuments } from '../../../src/api/validate.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

async function validate(text: string, source = 'test.yaml'): Promise<Awaited<ReturnType<typeof validateDocuments>>> {
  return validateDocuments(parseManifests(text, source));
}

/** The resources of a manifest that must be valid. */
async function valid(text: string, source = 'test.yaml'): Promise<Resource[]> {
  const result = await validate(text, source);
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  return result.resources;
}

/** The issues of a manifest that must be invalid, formatted. */
async function errors(text: string, source = 'test.yaml'): Promise<string[]> {
  const result = await validate(text, source);
  assert.ok(!result.ok, 'expected the manifest to be rejected');
  return result.errors.map((e: ManifestIssue) => e.format());
}

async function example(path: string): Promise<Resource[]> {
  return valid(readFileSync(join(EXAMPLES, path), 'utf8'), path);
}

function named<T extends Resource>(resources: Resource[], kind: string, name: string): T {
  const found = resources.find((r) => r.kind === kind && r.metadata.name === name);
  assert.ok(found, `${kind} ${name}`);
  return found as T;
}

const deployment = (spec: string, name = 'web') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
${spec
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;

const GOOD_DEPLOYMENT_SPEC = `selector:
  matchLabels: {app: web}
template:
  metadata:
    labels: {app: web}
  spec:
    containers:
    - name: web
      image: docker.io/istio/examples-helloworld-v1
      ports:
      - containerPort: 5000`;

// ---- the guides' manifests ----

test('every example manifest validates', async () => {
  const files = readdirSync(EXAMPLES, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 9, `examples found: ${files.join(', ')}`);
  for (const file of files) await example(file);
});

test("Istio's bookinfo.yaml: 14 objects, Kubernetes' defaults applied, unused fields kept and listed", async () => {
  const resources = await example('istio/bookinfo.yaml');
  assert.equal(resources.length, 14);
  assert.deepEqual(
    [...new Set(resources.map((r) => r.kind))].sort(),
    ['Deployment', 'Service', 'ServiceAccount'],
  );
  const reviews = named<Service>(resources, 'Service', 'reviews');
  assert.equal(reviews.spec!.type, 'ClusterIP');
  assert.deepEqual(reviews.spec!.ports, [{ port: 9080, name: 'http', protocol: 'TCP', targetPort: 9080 }]);
  assert.equal(reviews.metadata.namespace, undefined, 'the namespace is left to the caller');

  const v1 = named<Deployment>(resources, 'Deployment', 'reviews-v1');
  const container = v1.spec!.template.spec.containers[0]!;
  assert.deepEqual(container.env, [{ name: 'LOG_DIR', value: '/tmp/logs' }]);
  assert.deepEqual(container.ports, [{ containerPort: 9080, protocol: 'TCP' }]);
  assert.equal(v1.spec!.template.spec.serviceAccountName, 'bookinfo-reviews');
  // Fields Strait does not use stay in the object (so `get -o yaml` shows them) and are listed.
  assert.equal((container as unknown as { imagePullPolicy: string }).imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(ignoredFields(v1), [
    'spec.template.spec.containers[0].imagePullPolicy',
    'spec.template.spec.containers[0].volumeMounts',
    'spec.template.spec.volumes',
  ]);
  assert.deepEqual(ignoredFields(reviews), []);

  // The Istio guide applies parts of the file with `-l service=reviews` and `-l app=reviews,version=v3`.
  assert.deepEqual(
    resources.filter((r) => matchesSelector(r.metadata.labels, 'service=reviews')).map((r) => `${r.kind} ${r.metadata.name}`),
    ['Service reviews'],
  );
  assert.deepEqual(
    resources.filter((r) => matchesSelector(r.metadata.labels, 'app=reviews,version=v3')).map((r) => r.metadata.name),
    ['reviews-v3'],
  );
});

test("Istio's sleep.yaml: ServiceAccount, Service and a Deployment that runs a command", async () => {
  const resources = await example('istio/sleep.yaml');
  assert.deepEqual(
    resources.map((r) => r.kind),
    ['ServiceAccount', 'Service', 'Deployment'],
  );
  const sleep = named<Deployment>(resources, 'Deployment', 'sleep');
  assert.deepEqual(sleep.spec!.template.spec.containers[0]!.command, ['/bin/sleep', 'infinity']);
  assert.deepEqual(ignoredFields(sleep), [
    'spec.template.spec.terminationGracePeriodSeconds',
    'spec.template.spec.containers[0].imagePullPolicy',
    'spec.template.spec.containers[0].volumeMounts',
    'spec.template.spec.volumes',
  ]);
});

test("the Linkerd guide's helloworld, sleep and TrafficSplit", async () => {
  const cluster1 = await example('linkerd/helloworld-cluster1.yaml');
  const service = named<Service>(cluster1, 'Service', 'helloworld');
  assert.equal(service.metadata.labels!['mirror.linkerd.io/exported'], 'true');
  assert.equal(service.spec!.ports[0]!.targetPort, 5000);
  const v1 = named<Deployment>(cluster1, 'Deployment', 'helloworld-v1');
  assert.equal(v1.spec!.template.metadata!.annotations!['linkerd.io/inject'], 'enabled');
  assert.deepEqual(ignoredFields(v1), ['spec.template.spec.containers[0].resources', 'spec.template.spec.containers[0].imagePullPolicy']);

  const cluster2 = await example('linkerd/helloworld-cluster2.yaml');
  assert.deepEqual(
    cluster2.map((r) => `${r.kind} ${r.metadata.name}`),
    ['Service helloworld', 'Deployment helloworld-v2', 'TrafficSplit helloworld', 'Service sleep', 'Deployment sleep'],
  );
  const split = named<TrafficSplit>(cluster2, 'TrafficSplit', 'helloworld');
  assert.equal(split.apiVersion, 'split.smi-spec.io/v1alpha1');
  assert.deepEqual(split.spec, {
    service: 'helloworld',
    backends: [
      { service: 'helloworld', weight: 50 },
      { service: 'helloworld-cluster1', weight: 50 },
    ],
  });
  assert.deepEqual(named<Deployment>(cluster2, 'Deployment', 'sleep').spec!.template.spec.containers[0]!.command, ['/bin/sleep', '3650d']);
});

test('the Linkerd survey: quantity weights and a ServiceProfile with timeouts, retries and a budget', async () => {
  const [split] = (await example('linkerd/error-split.yaml')) as TrafficSplit[];
  assert.deepEqual(
    split!.spec!.backends.map((b) => b.weight),
    [0.5, 0.5],
  );
  const [profile] = (await example('linkerd/serviceprofile-podinfo.yaml')) as ServiceProfile[];
  assert.equal(profile!.metadata.creationTimestamp, undefined, '`creationTimestamp: null` is absent');
  const [info, echo] = profile!.spec!.routes;
  assert.deepEqual(info, { condition: { method: 'GET', pathRegex: '/api/info' }, name: 'GET /api/info', timeout: '300ms', isRetryable: true });
  assert.equal(echo!.isRetryable, false);
  assert.deepEqual(profile!.spec!.retryBudget, { retryRatio: 0.2, minRetriesPerSecond: 10, ttl: '10s' });
});

test("the Cilium blog's userlist Service: port 80 to targetPort 8181, global and shared annotations kept", async () => {
  const [svc] = (await example('cilium/userlist-svc.yaml')) as Service[];
  assert.deepEqual(svc!.spec!.ports, [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8181 }]);
  assert.equal(svc!.metadata.annotations!['service.cilium.io/global'], 'true');
  assert.equal(svc!.metadata.annotations!['service.cilium.io/shared'], 'true');
});

// ---- defaults and shapes ----

test('defaults: replicas 1, protocol TCP, targetPort = port; a headless Service may have no ports', async () => {
  const [web] = (await valid(deployment(GOOD_DEPLOYMENT_SPEC))) as Deployment[];
  assert.equal(web!.spec!.replicas, 1);
  const [headless] = (await valid('apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: None\n  selector: {app: web}\n')) as Service[];
  assert.deepEqual(headless!.spec, { clusterIP: 'None', selector: { app: 'web' }, type: 'ClusterIP', ports: [] });
  const [named_] = (await valid(
    'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - {name: http, port: 80, targetPort: http}\n  - {name: udp, port: 53, protocol: UDP}\n',
  )) as Service[];
  assert.deepEqual(named_!.spec!.ports, [
    { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
    { name: 'udp', port: 53, protocol: 'UDP', targetPort: 53 },
  ]);
});

test('every TrafficSplit version reads into one shape; the apiVersion is kept', async () => {
  const versions: [string, string][] = [
    ['v1alpha1', '[{service: a, weight: 500m}, {service: b, weight: "1"}]'],
    ['v1alpha2', '[{service: a, weight: 1}, {service: b, weight: 2}]'],
    ['v1alpha3', '[{service: a, weight: 1}, {service: b, weight: 2}]\n  matches: [{kind: HTTPRouteGroup, name: api}]'],
    ['v1alpha4', '[{service: a, weight: 1}, {service: b, weight: 2}]'],
  ];
  for (const [version, backends] of versions) {
    const [split] = (await valid(`apiVersion: split.smi-spec.io/${version}\nkind: TrafficSplit\nmetadata: {name: s}\nspec:\n  service: root\n  backends: ${backends}\n`)) as TrafficSplit[];
    assert.equal(split!.apiVersion, `split.smi-spec.io/${version}`);
    assert.equal(split!.spec!.service, 'root');
    assert.deepEqual(
      split!.spec!.backends.map((b) => b.service),
      ['a', 'b'],
    );
    for (const b of split!.spec!.backends) assert.equal(typeof b.weight, 'number');
    if (version === 'v1alpha3') assert.deepEqual(ignoredFields(split!), ['spec.matches']);
  }
});

test('a StatefulSet and a Pod validate; env valueFrom is accepted and listed as ignored', async () => {
  const [sts] = (await valid(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis}
spec:
  serviceName: redis
  replicas: 3
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers:
      - name: redis
        image: redis:7
        command: [redis-server]
        args: ["--port", "6379"]
        ports: [{name: redis, containerPort: 6379}]
`)) as StatefulSet[];
  assert.equal(sts!.spec!.serviceName, 'redis');
  assert.equal(sts!.spec!.replicas, 3);
  const [pod] = (await valid(`apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers:
  - name: c
    image: curlimages/curl
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - {name: MODE, value: test}
`)) as Pod[];
  assert.equal(pod!.spec!.containers[0]!.env!.length, 2);
  assert.deepEqual(ignoredFields(pod!), ['spec.containers[0].env[0].valueFrom']);
});

// ---- bad input ----

test('the 3rd of 4 documents invalid: its error is reported and the caller gets no resources', async () => {
  const text = [
    'apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{port: 9080, name: http}]\n  selector: {app: reviews}',
    'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bookinfo-reviews}',
    deployment(GOOD_DEPLOYMENT_SPEC.replace('selector:', 'replicas: -1\nselector:'), 'reviews-v1'),
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: sample}',
  ].join('\n---\n');
  const result = await validate(text, 'bookinfo.yaml');
  assert.ok(!result.ok);
  assert.equal('resources' in result, false, 'no resources on failure');
  assert.deepEqual(
    result.errors.map((e) => e.format()),
    ['bookinfo.yaml: document 3 (Deployment reviews-v1): spec.replicas: must be >= 0, got -1'],
  );
  const [issue] = result.errors;
  assert.deepEqual(
    { source: issue!.source, index: issue!.index, kind: issue!.kind, name: issue!.name, path: issue!.path, reason: issue!.reason },
    { source: 'bookinfo.yaml', index: 2, kind: 'Deployment', name: 'reviews-v1', path: ['spec', 'replicas'], reason: 'must be >= 0, got -1' },
  );
});

test('every problem in every document is reported at once', async () => {
  const text = `${deployment(GOOD_DEPLOYMENT_SPEC.replace('selector:', 'replicas: -2\nselector:').replace('containerPort: 5000', 'containerPort: 70000'), 'Bad_Name')}---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 0}]\n`;
  assert.deepEqual(await errors(text, 'many.yaml'), [
    'many.yaml: document 1 (Deployment Bad_Name): metadata.name: "Bad_Name" must be a lowercase RFC 1123 subdomain: lower case letters, digits, \'-\' or \'.\', starting and ending with a letter or digit (e.g. \'example.com\')',
    'many.yaml: document 1 (Deployment Bad_Name): spec.replicas: must be >= 0, got -2',
    'many.yaml: document 1 (Deployment Bad_Name): spec.template.spec.containers[0].ports[0].containerPort: must be between 1 and 65535, got 70000',
    'many.yaml: document 2 (Service s): spec.ports[0].port: must be between 1 and 65535, got 0',
    'many.yaml: document 2 (Service s): spec.ports[0].targetPort: must be between 1 and 65535, got 0',
  ]);
});

test('an unknown kind, or a kind at an apiVersion Strait does not serve', async () => {
  assert.deepEqual(await errors('apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n'), [
    'test.yaml: document 1 (Deploymnet x): kind: unknown kind "Deploymnet"; did you mean "Deployment" (apps/v1)?',
  ]);
  assert.deepEqual(await errors('apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\n'), [
    'test.yaml: document 1 (CronJob x): kind: unknown kind "CronJob" (batch/v1); Strait serves Namespace, Service, ServiceAccount, Pod, Deployment, StatefulSet, TrafficSplit, ServiceProfile, EndpointSlice, Secret, ConfigMap, Link, ServiceExport, ServiceImport',
  ]);
  assert.deepEqual(await errors('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {"a/b": "1", ok: "2"}\nbinaryData: {ok: "Mg=="}\n'), [
    `test.yaml: document 1 (ConfigMap x): data["a/b"]: must be a key of letters, digits, '-', '_' or '.' (a file name), at most 253 characters`,
    'test.yaml: document 1 (ConfigMap x): binaryData.ok: is in data too; a key may be in only one of them',
  ]);
  assert.deepEqual(await errors('apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x}\n'), [
    'test.yaml: document 1 (Deployment x): apiVersion: Deployment is served as apps/v1, not "extensions/v1beta1"',
  ]);
  assert.deepEqual(await errors('metadata: {name: x}\n'), [
    'test.yaml: document 1 (x): apiVersion: required field is missing',
    'test.yaml: document 1 (x): kind: required field is missing',
  ]);
});

test('a field Kubernetes does not define is an error naming the nearest valid field', async () => {
  assert.deepEqual(await errors(deployment(`replica: 2\n${GOOD_DEPLOYMENT_SPEC}`)), [
    'test.yaml: document 1 (Deployment web): spec.replica: unknown field "replica"; did you mean "replicas"?',
  ]);
  const misspelt = await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('    containers:', '    contianers:')));
  assert.equal(misspelt[0], 'test.yaml: document 1 (Deployment web): spec.template.spec.contianers: unknown field "contianers"; did you mean "containers"?');
  assert.deepEqual(await errors('apiVersion: v1\nkind: Namespace\nmetadata: {name: x, lables: {a: b}}\n'), [
    'test.yaml: document 1 (Namespace x): metadata.lables: unknown field "lables"; did you mean "labels"?',
  ]);
  // Custom resources are checked against their own schema, and their metadata against Kubernetes'.
  assert.deepEqual(
    await errors('apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s, anotations: {}}\nspec:\n  service: a\n  backends: [{service: a, weigth: 1}]\n'),
    [
      'test.yaml: document 1 (TrafficSplit s): metadata.anotations: unknown field "anotations"; did you mean "annotations"?',
      'test.yaml: document 1 (TrafficSplit s): spec.backends[0].weigth: unknown field "weigth"; did you mean "weight"?',
      'test.yaml: document 1 (TrafficSplit s): spec.backends[0].weight: required field is missing',
    ],
  );
  // A v1alpha3 field is unknown in v1alpha2.
  assert.match(
    (await errors('apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s}\nspec:\n  service: a\n  backends: [{service: a, weight: 1}]\n  matches: []\n'))[0]!,
    /spec\.matches: unknown field "matches"$/,
  );
});

test("values Kubernetes' own schema rejects", async () => {
  const policy = await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('      image:', '      imagePullPolicy: Sometimes\n      image:')));
  assert.deepEqual(policy, [
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers[0].imagePullPolicy: must be one of Always, IfNotPresent, Never, got "Sometimes"',
  ]);
  const replicas = await errors(deployment(`replicas: three\n${GOOD_DEPLOYMENT_SPEC}`));
  assert.deepEqual(replicas, ['test.yaml: document 1 (Deployment web): spec.replicas: must be an integer, got "three"']);
  const target = await errors('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80, targetPort: {a: 1}}]\n');
  assert.deepEqual(target, ['test.yaml: document 1 (Service s): spec.ports[0].targetPort: must be a string or an integer, got an object']);
  const label = await errors('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels: {istio-injection: yes}\n');
  assert.deepEqual(label, ['test.yaml: document 1 (Namespace x): metadata.labels.istio-injection: must be a string, got true']);
});

test('missing required fields', async () => {
  assert.deepEqual(await errors(deployment('selector: {matchLabels: {app: web}}\ntemplate:\n  metadata: {labels: {app: web}}\n  spec: {}')), [
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers: required field is missing',
  ]);
  assert.deepEqual(await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('      image: docker.io/istio/examples-helloworld-v1\n', ''))), [
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers[0].image: required field is missing',
  ]);
  assert.deepEqual(await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('    containers:\n', '    containers: []\n    initContainers:\n'))), [
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers: must have at least one container',
  ]);
  assert.deepEqual(await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('selector:\n  matchLabels: {app: web}\n', ''))), [
    'test.yaml: document 1 (Deployment web): spec.selector: required field is missing',
  ]);
  assert.deepEqual(await errors('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: s}\n'), [
    'test.yaml: document 1 (Service s): spec.ports: required field is missing (only a headless Service, clusterIP: None, may have no ports)',
  ]);
  assert.deepEqual(await errors('apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n'), ['test.yaml: document 1 (Namespace): metadata.name: required field is missing']);
  assert.deepEqual(await errors('apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {name: s}\nspec:\n  backends: []\n'), [
    'test.yaml: document 1 (TrafficSplit s): spec.service: required field is missing',
    'test.yaml: document 1 (TrafficSplit s): spec.backends: must have at least one backend',
  ]);
});

test('negative replicas', async () => {
  assert.deepEqual(await errors(deployment(`replicas: -1\n${GOOD_DEPLOYMENT_SPEC}`)), ['test.yaml: document 1 (Deployment web): spec.replicas: must be >= 0, got -1']);
  assert.deepEqual(await valid(deployment(`replicas: 0\n${GOOD_DEPLOYMENT_SPEC}`)).then((r) => (r[0] as Deployment).spec!.replicas), 0);
});

test('ports out of 1..65535', async () => {
  assert.deepEqual(await errors('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 65536, targetPort: 8080}]\n'), [
    'test.yaml: document 1 (Service s): spec.ports[0].port: must be between 1 and 65535, got 65536',
  ]);
  assert.deepEqual(await errors('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80, targetPort: -1}]\n'), [
    'test.yaml: document 1 (Service s): spec.ports[0].targetPort: must be between 1 and 65535, got -1',
  ]);
  assert.deepEqual(await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('containerPort: 5000', 'containerPort: 0'))), [
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers[0].ports[0].containerPort: must be between 1 and 65535, got 0',
  ]);
});

test("a Deployment or StatefulSet selector that does not match its template's labels", async () => {
  assert.deepEqual(await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('labels: {app: web}', 'labels: {app: website}'))), [
    'test.yaml: document 1 (Deployment web): spec.template.metadata.labels: must match spec.selector (app=web), got app=website',
  ]);
  const sts = `apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  selector:\n    matchExpressions: [{key: app, operator: In, values: [db]}]\n  template:\n    spec:\n      containers: [{name: db, image: redis}]\n`;
  assert.deepEqual(await errors(sts), ['test.yaml: document 1 (StatefulSet db): spec.template.metadata.labels: must match spec.selector (app=db), got no labels']);
  assert.deepEqual(await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('matchLabels: {app: web}', 'matchLabels: {}'))), [
    'test.yaml: document 1 (Deployment web): spec.selector: must not be empty',
  ]);
  const badExpression = deployment(GOOD_DEPLOYMENT_SPEC.replace('matchLabels: {app: web}', 'matchExpressions: [{key: app, operator: In}]'));
  assert.deepEqual(await errors(badExpression), [
    'test.yaml: document 1 (Deployment web): spec.selector.matchExpressions[0].values: must be non-empty for operator In',
    'test.yaml: document 1 (Deployment web): spec.template.metadata.labels: must match spec.selector (app in ()), got app=web',
  ]);
});

test('TrafficSplit weights that are negative, all zero, or not numbers', async () => {
  const split = (version: string, backends: string) =>
    `apiVersion: split.smi-spec.io/${version}\nkind: TrafficSplit\nmetadata: {name: s}\nspec:\n  service: root\n  backends: ${backends}\n`;
  assert.deepEqual(await errors(split('v1alpha1', '[{service: a, weight: -50}, {service: b, weight: 50}]')), [
    'test.yaml: document 1 (TrafficSplit s): spec.backends[0].weight: must be >= 0, got -50',
  ]);
  assert.deepEqual(await errors(split('v1alpha2', '[{service: a, weight: 0}, {service: b, weight: 0}]')), [
    'test.yaml: document 1 (TrafficSplit s): spec.backends: weights must not all be zero',
  ]);
  assert.deepEqual(await errors(split('v1alpha1', '[{service: a, weight: 0m}, {service: b, weight: "0"}]')), [
    'test.yaml: document 1 (TrafficSplit s): spec.backends: weights must not all be zero',
  ]);
  assert.deepEqual(await errors(split('v1alpha1', '[{service: a, weight: half}, {service: b, weight: true}]')), [
    'test.yaml: document 1 (TrafficSplit s): spec.backends[0].weight: must be a number or a quantity such as 500m, got "half"',
    'test.yaml: document 1 (TrafficSplit s): spec.backends[1].weight: must be a number or a quantity such as 500m, got true',
  ]);
  assert.deepEqual(await errors(split('v1alpha4', '[{service: a, weight: 500m}, {service: b, weight: 1.5}]')), [
    'test.yaml: document 1 (TrafficSplit s): spec.backends[0].weight: must be an integer, got "500m"',
    'test.yaml: document 1 (TrafficSplit s): spec.backends[1].weight: must be an integer, got 1.5',
  ]);
});

test('names that are not valid DNS names, as Kubernetes checks them per kind', async () => {
  assert.match((await errors('apiVersion: v1\nkind: Namespace\nmetadata: {name: sample.ns}\n'))[0]!, /metadata\.name: "sample\.ns" must be a lowercase RFC 1123 label/);
  assert.match((await errors('apiVersion: v1\nkind: Service\nmetadata: {name: 1st}\nspec: {ports: [{port: 80}]}\n'))[0]!, /metadata\.name: "1st" must be an RFC 1035 label/);
  assert.match((await errors(deployment(GOOD_DEPLOYMENT_SPEC, 'Hello_World')))[0]!, /metadata\.name: "Hello_World" must be a lowercase RFC 1123 subdomain/);
  assert.match((await errors('apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: My_NS}\n'))[0]!, /metadata\.namespace: "My_NS" must be a lowercase RFC 1123 label/);
  assert.match(
    (await errors(deployment(GOOD_DEPLOYMENT_SPEC.replace('- name: web', '- name: Web_1'))))[0]!,
    /spec\.template\.spec\.containers\[0\]\.name: "Web_1" must be a lowercase RFC 1123 label/,
  );
  // A subdomain with dots is fine where Kubernetes allows it.
  await valid(deployment(GOOD_DEPLOYMENT_SPEC, 'web.v1'));
});

test('duplicate container and port names, invalid port names, several unnamed Service ports', async () => {
  const twoContainers = GOOD_DEPLOYMENT_SPEC.replace(
    '      ports:\n      - containerPort: 5000',
    '      ports:\n      - {containerPort: 5000, name: http}\n      - {containerPort: 5001, name: http}\n    - name: web\n      image: other',
  );
  assert.deepEqual(await errors(deployment(twoContainers)), [
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers[0].ports[1].name: duplicate port name "http"',
    'test.yaml: document 1 (Deployment web): spec.template.spec.containers[1].name: duplicate container name "web"',
  ]);
  assert.deepEqual(await errors('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}, {port: 81, targetPort: web--port}]\n'), [
    'test.yaml: document 1 (Service s): spec.ports[0].name: required when a Service has more than one port',
    'test.yaml: document 1 (Service s): spec.ports[1].name: required when a Service has more than one port',
    'test.yaml: document 1 (Service s): spec.ports[1].targetPort: port name "web--port" must not contain consecutive \'-\'',
  ]);
});

test('ServiceProfile routes: durations, regular expressions, conditions and the retry budget are checked', async () => {
  const profile = `apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local}
spec:
  routes:
  - name: GET /books
    condition: {method: GET, pathRegex: "/books/(["}
    timeout: 300 ms
    responseClasses:
    - condition: {status: {min: 600}}
  - name: empty
    condition: {}
  retryBudget: {retryRatio: -0.1, minRetriesPerSecond: 10, ttl: 10s}
`;
  const found = await errors(profile);
  assert.equal(found.length, 5, found.join('\n'));
  assert.match(found[0]!, /spec\.routes\[0\]\.condition\.pathRegex: is not a valid regular expression/);
  assert.match(found[1]!, /spec\.routes\[0\]\.timeout: must be a duration such as 300ms or 10s, got "300 ms"$/);
  assert.match(found[2]!, /spec\.routes\[0\]\.responseClasses\[0\]\.condition\.status\.min: must be an HTTP status between 100 and 599, got 600$/);
  assert.match(found[3]!, /spec\.routes\[1\]\.condition: must set at least one of method, pathRegex, all, any, not$/);
  assert.match(found[4]!, /spec\.retryBudget\.retryRatio: must be >= 0, got -0\.1$/);
});

test('documents from a List are named by item', async () => {
  const list = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ok' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'Not_OK' } },
    ],
  });
  const found = await errors(list, 'list.json');
  assert.equal(found.length, 1);
  assert.match(found[0]!, /^list\.json: document 1, item 2 \(Namespace Not_OK\): metadata\.name: /);
});
