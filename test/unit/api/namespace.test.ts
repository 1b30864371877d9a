// Filling in namespaces as `kubectl apply -n` does, and printing selectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSelector, parseSelector, selectorRequirements } from '../../../src/api/labels.js';
import { applyNamespace, NamespaceMismatchError } from '../../../src/api/namespace.js';
import type { Resource } from '../../../src/api/types.js';

const svc = (namespace?: string): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: namespace === undefined ? { name: 'helloworld', labels: { app: 'helloworld' } } : { name: 'helloworld', namespace, labels: { app: 'helloworld' } },
  spec: {},
});
const ns: Resource = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample', namespace: 'ignored' } };

test('namespaced objects get the given namespace, else their own, else "default"', () => {
  assert.equal(applyNamespace([svc()])[0]!.metadata.namespace, 'default');
  assert.equal(applyNamespace([svc()], 'sample')[0]!.metadata.namespace, 'sample');
  assert.equal(applyNamespace([svc('sample')])[0]!.metadata.namespace, 'sample');
  assert.equal(applyNamespace([svc('sample')], 'sample')[0]!.metadata.namespace, 'sample');
  const [filled] = applyNamespace([svc()], 'sample');
  assert.deepEqual(Object.keys(filled!.metadata), ['name', 'namespace', 'labels']);
});

test('cluster-scoped objects have no namespace', () => {
  assert.deepEqual(applyNamespace([ns], 'sample')[0]!.metadata, { name: 'sample' });
});

test('a document naming another namespace than -n is an error, as kubectl reports it', () => {
  assert.throws(
    () => applyNamespace([svc(), svc('other')], 'sample'),
    (err: unknown) => {
      assert.ok(err instanceof NamespaceMismatchError);
      assert.equal(
        err.message,
        `Service other/helloworld: the namespace from the provided object "other" does not match the namespace "sample". You must pass '--namespace=other' to perform this operation.`,
      );
      return true;
    },
  );
});

test('the input is not modified', () => {
  const original = svc();
  applyNamespace([original, ns], 'sample');
  assert.equal(original.metadata.namespace, undefined);
  assert.equal(ns.metadata.namespace, 'ignored');
});

test('formatSelector prints the string form, which parses back to the same requirements', () => {
  const selector = {
    matchLabels: { app: 'reviews' },
    matchExpressions: [
      { key: 'version', operator: 'In' as const, values: ['v1', 'v2'] },
      { key: 'tier', operator: 'NotIn' as const, values: ['db'] },
      { key: 'canary', operator: 'DoesNotExist' as const },
      { key: 'team', operator: 'Exists' as const },
    ],
  };
  const text = formatSelector(selector);
  assert.equal(text, 'app=reviews,version in (v1,v2),tier!=db,!canary,team');
  assert.deepEqual(parseSelector(text), selectorRequirements(selector));
  assert.equal(formatSelector({}), '');
});
