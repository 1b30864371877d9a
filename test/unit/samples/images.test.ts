// Which image references run which sample, and how references are read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ImageReferenceError, knownSampleImages, parseImageReference, resolveSampleImage } from '../../../samples/images.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIGEST = `sha256:${'a1'.repeat(32)}`;

test('image references are parsed and normalized as Docker does', () => {
  assert.deepEqual(parseImageReference('nginx'), { registry: 'docker.io', repository: 'library/nginx' });
  assert.deepEqual(parseImageReference('istio/examples-helloworld-v1:1.0'), { registry: 'docker.io', repository: 'istio/examples-helloworld-v1', tag: '1.0' });
  assert.deepEqual(parseImageReference('index.docker.io/curlimages/curl:8.5.0'), { registry: 'docker.io', repository: 'curlimages/curl', tag: '8.5.0' });
  assert.deepEqual(parseImageReference(`curlimages/curl@${DIGEST}`), { registry: 'docker.io', repository: 'curlimages/curl', digest: DIGEST });
  assert.deepEqual(parseImageReference(`localhost:5000/team/app:v2@${DIGEST}`), { registry: 'localhost:5000', repository: 'team/app', tag: 'v2', digest: DIGEST });
  assert.deepEqual(parseImageReference('GHCR.io/stefanprodan/podinfo'), { registry: 'ghcr.io', repository: 'stefanprodan/podinfo' });
  // A first component without '.', ':' or capitals is a path, not a registry.
  assert.deepEqual(parseImageReference('registry/team/app'), { registry: 'docker.io', repository: 'registry/team/app' });
});

test('malformed image references are errors that say what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['', /is empty/],
    ['curl images/curl', /white space/],
    ['curlimages/curl:', /tag "" must be/],
    ['curlimages/curl:-x', /tag "-x" must be/],
    ['curlimages/curl@sha256:xyz', /digest "sha256:xyz" is not algorithm:hex/],
    ['istio//examples-helloworld-v1', /empty component/],
    ['istio/Examples-helloworld-v1', /"Examples-helloworld-v1" must be lower case/],
    ['istio/examples--', /may only contain/],
    ['bad_host.io:x/app', /registry "bad_host.io:x" is not a host name/],
  ];
  for (const [image, reason] of cases) {
    assert.throws(
      () => resolveSampleImage(image),
      (error: unknown) => error instanceof ImageReferenceError && error.message.startsWith(`invalid image reference ${JSON.stringify(image)}: `) && reason.test(error.message),
      image,
    );
  }
});

test('the guides’ images map to their samples, any registry, tag or digest', () => {
  const cases: [string, string, Record<string, string> | undefined, number[]][] = [
    ['docker.io/istio/examples-helloworld-v1', 'helloworld', { SERVICE_VERSION: 'v1' }, [5000]],
    ['istio/examples-helloworld-v2:1.0', 'helloworld', { SERVICE_VERSION: 'v2' }, [5000]],
    ['gcr.io/mirror/istio/examples-helloworld-v1:latest', 'helloworld', { SERVICE_VERSION: 'v1' }, [5000]],
    ['localhost:5000/istio/examples-helloworld-v2', 'helloworld', { SERVICE_VERSION: 'v2' }, [5000]],
    ['docker.io/istio/examples-bookinfo-reviews-v1:1.20.2', 'reviews', { SERVICE_VERSION: 'v1', ENABLE_RATINGS: 'false', STAR_COLOR: 'black' }, [9080]],
    ['docker.io/istio/examples-bookinfo-reviews-v2:1.20.2', 'reviews', { SERVICE_VERSION: 'v2', ENABLE_RATINGS: 'true', STAR_COLOR: 'black' }, [9080]],
    ['istio/examples-bookinfo-reviews-v3', 'reviews', { SERVICE_VERSION: 'v3', ENABLE_RATINGS: 'true', STAR_COLOR: 'red' }, [9080]],
    ['curlimages/curl', 'sleep', undefined, []],
    ['curlimages/curl:8.5.0', 'sleep', undefined, []],
    [`curlimages/curl@${DIGEST}`, 'sleep', undefined, []],
    [`docker.io/curlimages/curl:8.5.0@${DIGEST}`, 'sleep', undefined, []],
    ['ssongman/userlist:v1', 'userlist', undefined, [8181]],
    ['stefanprodan/podinfo', 'podinfo', undefined, [9898]],
    ['ghcr.io/stefanprodan/podinfo:6.7.0', 'podinfo', undefined, [9898]],
    ['strait/error-injector', 'error-injector', undefined, [8080]],
    ['strait/books:latest', 'books', undefined, [7000]],
  ];
  for (const [image, sample, env, ports] of cases) {
    const resolved = resolveSampleImage(image);
    assert.ok(resolved, image);
    assert.equal(resolved.sample, sample, image);
    assert.deepEqual(resolved.env, env, image);
    assert.deepEqual(resolved.ports, ports, image);
    assert.equal(resolved.script, `${ROOT}dist/samples/${sample}.js`, image);
  }
});

test('every sample answers to strait/<sample>', () => {
  for (const sample of ['helloworld', 'sleep', 'reviews', 'userlist', 'podinfo', 'error-injector', 'books']) {
    assert.equal(resolveSampleImage(`strait/${sample}`)?.sample, sample);
    assert.ok(existsSync(`${ROOT}samples/${sample}.ts`), `samples/${sample}.ts exists`);
  }
});

test('other images map to no sample', () => {
  for (const image of [
    'busybox',
    'docker.io/library/curl',
    'myistio/examples-helloworld-v1',
    'istio/examples-helloworld-v1-extra',
    'istio/examples-helloworld',
    'istio/examples-bookinfo-reviews-v4',
    'istio/examples-bookinfo-ratings-v1',
    'strait/unknown',
    'strait/images',
    'strait/common',
  ]) {
    assert.equal(resolveSampleImage(image), undefined, image);
  }
});

test('knownSampleImages lists images that all resolve, covering every sample', () => {
  const known = knownSampleImages();
  for (const image of ['docker.io/istio/examples-helloworld-v1', 'docker.io/istio/examples-bookinfo-reviews-v3', 'curlimages/curl', 'ssongman/userlist', 'stefanprodan/podinfo', 'strait/books']) {
    assert.ok(known.includes(image), image);
  }
  const samples = new Set(known.map((image) => resolveSampleImage(image)?.sample));
  assert.ok(!samples.has(undefined));
  assert.deepEqual([...samples].sort(), ['books', 'error-injector', 'helloworld', 'nginx', 'podinfo', 'reviews', 'sleep', 'userlist']);
});
