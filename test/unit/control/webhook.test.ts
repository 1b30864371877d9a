// The injector webhook's answer to an AdmissionReview: which pods get a patch, and that the patch,
// applied as the API server applies it, gives the pod a native proxy sidecar with its token and env.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../../src/api/types.js';
import { PROXY_CONTAINER } from '../../../src/api/mesh.js';
import { podPatch, reviewPod, type AdmissionReview, type InjectorOptions, type JsonPatchOp } from '../../../src/control/webhook.js';

const settings = { cluster: 'c1', controlPlane: '127.20.240.9:8086', trustDomain: 'cluster.local', audience: 'identity.strait.dev' };

function options(namespaces: Record<string, Resource>, ensured: string[] = []): InjectorOptions {
  return {
    settings,
    namespace: (name) => Promise.resolve(namespaces[name]),
    ensureTrustAnchors: (ns) => {
      ensured.push(ns);
      return Promise.resolve();
    },
  };
}

const ns = (name: string, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations, labels } });

function review(pod: object, extra: object = {}): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'sample', object: pod as never, ...extra } };
}

const pod = (annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'helloworld-', annotations },
  spec: { containers: [{ name: 'app', image: 'docker.io/istio/examples-helloworld-v1', env: [{ name: 'A', value: '1' }] }], initContainers: [{ name: 'setup', image: 'busybox' }] },
});

/** RFC 6902 "add" as the API server applies it: object members are set, "-" appends. */
function applyPatch(target: unknown, ops: JsonPatchOp[]): unknown {
  const doc = structuredClone(target) as Record<string, unknown>;
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    let node = doc;
    for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
    node[keys.at(-1)!] = op.value;
  }
  return doc;
}

const decode = (r: AdmissionReview) => JSON.parse(Buffer.from(r.response!.patch!, 'base64').toString('utf8')) as JsonPatchOp[];

describe('injector webhook', () => {
  it('patches a pod of a namespace annotated linkerd.io/inject: enabled into one with a native proxy sidecar', async () => {
    const ensured: string[] = [];
    const answer = await reviewPod(review(pod()), options({ sample: ns('sample', { 'linkerd.io/inject': 'enabled' }) }, ensured));
    assert.equal(answer.response?.uid, 'u-1');
    assert.equal(answer.response?.allowed, true);
    assert.equal(answer.response?.patchType, 'JSONPatch');
    const mutated = applyPatch(pod(), decode(answer)) as ReturnType<typeof pod> & { spec: { initContainers: Record<string, unknown>[]; volumes: Record<string, unknown>[] } };
    const [proxy, setup] = mutated.spec.initContainers;
    assert.equal(proxy!.name, PROXY_CONTAINER);
    assert.equal(proxy!.restartPolicy, 'Always', 'a native sidecar');
    assert.equal(setup!.name, 'setup', "the pod's own init containers run after the proxy starts");
    const env = Object.fromEntries((proxy!.env as { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[]).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef.fieldPath]));
    assert.equal(env.STRAIT_CONTROL_PLANE, '127.20.240.9:8086');
    assert.equal(env.STRAIT_IDENTITY_TOKEN_FILE, 'var/run/secrets/strait/identity/token', 'relative to the pod directory');
    assert.equal(env.STRAIT_TRUST_ANCHORS, 'var/run/secrets/strait/trust-anchors/ca-bundle.crt');
    assert.equal(env.POD_IP, 'status.podIP');
    assert.equal(env.POD_NAME, 'metadata.name');
    const token = mutated.spec.volumes.find((v) => v.name === 'strait-identity-token') as { projected: { sources: { serviceAccountToken: { audience: string } }[] } };
    assert.equal(token.projected.sources[0]!.serviceAccountToken.audience, 'identity.strait.dev');
    const app = mutated.spec.containers[0]!;
    assert.deepEqual(app.env.map((e) => e.name), ['A', 'POD_IP', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY']);
    assert.deepEqual(ensured, ['sample'], 'the trust-anchor ConfigMap is ensured in the pod namespace');
    assert.ok((mutated.metadata as { annotations: Record<string, string> }).annotations['strait.dev/proxy-version']);
  });

  it('selects by istio-injection=enabled and by the pod annotation strait.dev/inject', async () => {
    const istio = await reviewPod(review(pod()), options({ sample: ns('sample', {}, { 'istio-injection': 'enabled' }) }));
    assert.ok(istio.response?.patch);
    const own = await reviewPod(review(pod({ 'strait.dev/inject': 'enabled' })), options({ sample: ns('sample') }));
    assert.ok(own.response?.patch);
  });

  it('admits pods that do not ask for a proxy, or opt out, unchanged', async () => {
    const plain = await reviewPod(review(pod()), options({ sample: ns('sample') }));
    assert.deepEqual(plain.response, { uid: 'u-1', allowed: true });
    const optOut = await reviewPod(review(pod({ 'linkerd.io/inject': 'disabled' })), options({ sample: ns('sample', { 'linkerd.io/inject': 'enabled' }) }));
    assert.equal(optOut.response?.patch, undefined);
  });

  it('writes nothing on a dry run, and admits without a proxy (with a warning) when the namespace cannot be read', async () => {
    const ensured: string[] = [];
    const dry = await reviewPod(review(pod(), { dryRun: true }), options({ sample: ns('sample', { 'linkerd.io/inject': 'enabled' }) }, ensured));
    assert.ok(dry.response?.patch);
    assert.deepEqual(ensured, []);
    const broken = await reviewPod(review(pod()), { ...options({}), namespace: () => Promise.reject(new Error('forbidden')) });
    assert.equal(broken.response?.allowed, true);
    assert.equal(broken.response?.patch, undefined);
    assert.match(broken.response.warnings![0]!, /namespace sample could not be read.*forbidden/);
  });

  it('does not inject twice, and patches only the fields that change', async () => {
    const first = await reviewPod(review(pod()), options({ sample: ns('sample', { 'linkerd.io/inject': 'enabled' }) }));
    const injected = applyPatch(pod(), decode(first)) as Resource & { spec: object };
    assert.deepEqual(podPatch(injected, injected), []);
    const again = await reviewPod(review(injected), options({ sample: ns('sample', { 'linkerd.io/inject': 'enabled' }) }));
    assert.equal(again.response?.patch, undefined);
    assert.deepEqual(decode(first).map((op) => op.path), ['/metadata/annotations', '/spec/initContainers', '/spec/containers', '/spec/volumes']);
  });
});
