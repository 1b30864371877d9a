// The kinds registry and how the CLI names kinds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiVersionOf, findKind, isNamespaced, KINDS, kindNamed, resolveKind, UnknownKindError } from '../../../src/api/kinds.js';

test('every name kubectl users type resolves to its kind', () => {
  const names: Record<string, string[]> = {
    Pod: ['po', 'pod', 'pods', 'Pod', 'PODS'],
    Deployment: ['deploy', 'deployment', 'deployments', 'deployments.apps', 'deployment.v1.apps'],
    Service: ['svc', 'service', 'services', 'services.v1'],
    Namespace: ['ns', 'namespace', 'namespaces'],
    ServiceAccount: ['sa', 'serviceaccount', 'serviceaccounts'],
    StatefulSet: ['sts', 'statefulset', 'statefulsets', 'statefulsets.apps'],
    TrafficSplit: ['ts', 'trafficsplit', 'trafficsplits', 'trafficsplits.split.smi-spec.io', 'trafficsplit.v1alpha2.split.smi-spec.io'],
    ServiceProfile: ['sp', 'serviceprofile', 'serviceprofiles', 'serviceprofiles.linkerd.io'],
  };
  for (const [kind, texts] of Object.entries(names)) {
    for (const text of texts) assert.equal(resolveKind(text).kind, kind, text);
  }
});

test('an unknown resource type suggests the nearest name', () => {
  const cases: [string, string | undefined][] = [
    ['deploymnet', 'deployment'],
    ['servcies', 'services'],
    ['trafficsplt', 'trafficsplit'],
    ['pdo', 'pod'],
    ['cronjobs', undefined],
  ];
  for (const [text, suggestion] of cases) {
    assert.throws(
      () => resolveKind(text),
      (err: unknown) => {
        assert.ok(err instanceof UnknownKindError);
        assert.equal(err.suggestion, suggestion, text);
        assert.match(err.message, new RegExp(`unknown resource type "${text}"`));
        if (suggestion) assert.ok(err.message.endsWith(`did you mean "${suggestion}"?`), err.message);
        return true;
      },
    );
  }
  // A kind qualified by a group it does not belong to is not that kind.
  assert.throws(() => resolveKind('deployments.linkerd.io'), UnknownKindError);
});

test('kinds are looked up by apiVersion and kind, every TrafficSplit version included', () => {
  assert.equal(findKind('apps/v1', 'Deployment')?.plural, 'deployments');
  assert.equal(findKind('v1', 'Deployment'), undefined);
  assert.equal(findKind('apps/v1beta1', 'Deployment'), undefined);
  for (const v of ['v1alpha1', 'v1alpha2', 'v1alpha3', 'v1alpha4']) assert.equal(findKind(`split.smi-spec.io/${v}`, 'TrafficSplit')?.kind, 'TrafficSplit');
  assert.equal(findKind('linkerd.io/v1alpha2', 'ServiceProfile')?.kind, 'ServiceProfile');
  assert.equal(apiVersionOf(kindNamed('Service')!), 'v1');
  assert.equal(apiVersionOf(kindNamed('StatefulSet')!), 'apps/v1');
});

test('only Namespace is cluster-scoped; kind names are unique', () => {
  assert.deepEqual(
    KINDS.filter((k) => !k.namespaced).map((k) => k.kind),
    ['Namespace'],
  );
  assert.equal(isNamespaced('Namespace'), false);
  assert.equal(isNamespaced('Deployment'), true);
  assert.equal(new Set(KINDS.map((k) => k.kind)).size, KINDS.length);
  const aliases = KINDS.flatMap((k) => [k.plural, k.singular, ...k.shortNames]);
  assert.equal(new Set(aliases).size, aliases.length, 'no CLI name means two kinds');
});
