import assert from 'node:assert/strict';
import { test } from 'node:test';
import { customResourceDefinitions, KIND_ROUTES, kindRoute, structural, type JSONSchemaProps } from '../../../src/api/crds.js';
import { KINDS } from '../../../src/api/kinds.js';

/**
 * The rules of a structural schema (Kubernetes' apiextensions validation): every node has one type
 * unless it keeps unknown fields or is int-or-string; no $ref, unions or JSON Schema keywords
 * OpenAPI v3 lacks; properties and additionalProperties never together; arrays have items.
 * Returns each violation with its path.
 */
function structuralProblems(node: JSONSchemaProps, path = ''): string[] {
  const problems: string[] = [];
  const raw = node as Record<string, unknown>;
  for (const key of ['$ref', '$defs', '$schema', 'anyOf', 'oneOf', 'allOf', 'not', 'propertyNames', 'const', 'definitions']) {
    if (key in raw) problems.push(`${path || '/'}: ${key} is not allowed`);
  }
  if (Array.isArray(raw.type)) problems.push(`${path}: type must be one type`);
  if (node.type === undefined && !node['x-kubernetes-preserve-unknown-fields'] && !node['x-kubernetes-int-or-string']) problems.push(`${path}: type is missing`);
  if (node.properties && node.additionalProperties) problems.push(`${path}: properties and additionalProperties together`);
  if (node.type === 'array' && !node.items) problems.push(`${path}: array without items`);
  if (node['x-kubernetes-int-or-string'] && node.type !== undefined) problems.push(`${path}: int-or-string with a type`);
  for (const [name, child] of Object.entries(node.properties ?? {})) problems.push(...structuralProblems(child, `${path}.${name}`));
  if (node.additionalProperties) problems.push(...structuralProblems(node.additionalProperties, `${path}{}`));
  if (node.items) problems.push(...structuralProblems(node.items, `${path}[]`));
  return problems;
}

test('every generated CRD has a structural schema for each served version', () => {
  const crds = customResourceDefinitions();
  assert.deepEqual(crds.map((c) => c.spec.names.kind).sort(), ['Link', 'ServiceExport', 'ServiceImport', 'ServiceProfile', 'TrafficSplit']);
  for (const crd of crds) {
    assert.equal(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`);
    assert.equal(crd.spec.versions.filter((v) => v.storage).length, 1, `${crd.metadata.name}: one storage version`);
    for (const version of crd.spec.versions) {
      const schema = version.schema.openAPIV3Schema;
      assert.deepEqual(structuralProblems(schema), [], `${crd.metadata.name} ${version.name}`);
      assert.deepEqual(Object.keys(schema.properties!.metadata!), ['type'], 'the root metadata is left to the API server');
      assert.equal(schema.properties!.status!['x-kubernetes-preserve-unknown-fields'], true);
      assert.deepEqual(version.subresources, { status: {} });
    }
  }
});

test('TrafficSplit serves every version the local validator accepts, stored as v1alpha4', () => {
  const crd = customResourceDefinitions().find((c) => c.spec.names.kind === 'TrafficSplit')!;
  assert.deepEqual(crd.spec.versions.map((v) => [v.name, v.storage]), [['v1alpha4', true], ['v1alpha3', false], ['v1alpha2', false], ['v1alpha1', false]]);
  const weight = (name: string) => crd.spec.versions.find((v) => v.name === name)!.schema.openAPIV3Schema.properties!.spec!.properties!.backends!.items!.properties!.weight!;
  assert.deepEqual(weight('v1alpha4'), { type: 'integer' });
  // A quantity (`500m`) or a plain number, as the local validator reads it.
  assert.deepEqual(weight('v1alpha1'), { 'x-kubernetes-preserve-unknown-fields': true });
  const spec = (name: string) => crd.spec.versions.find((v) => v.name === name)!.schema.openAPIV3Schema.properties!.spec!;
  assert.ok(spec('v1alpha3').properties!.matches);
  assert.equal(spec('v1alpha2').properties!.matches, undefined);
});

test('a recursive schema is cut at its first repetition, keeping any fields there', () => {
  const crd = customResourceDefinitions().find((c) => c.spec.names.kind === 'ServiceProfile')!;
  const route = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!.properties!.routes!.items!;
  const condition = route.properties!.condition!;
  assert.equal(condition.type, 'object');
  assert.deepEqual(condition.properties!.pathRegex, { type: 'string' });
  assert.deepEqual(condition.properties!.not, { type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  assert.deepEqual(condition.properties!.all!.items, { type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  assert.equal(route.properties!.isRetryable!.default, false);
});

test('defaults and maps carry over from zod', () => {
  const link = customResourceDefinitions().find((c) => c.spec.names.kind === 'Link')!;
  const spec = link.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
  assert.deepEqual(spec.properties!.probeSpec!.properties!.period, { type: 'string', default: '3s' });
  assert.deepEqual(spec.properties!.selector!.properties!.matchLabels, { type: 'object', additionalProperties: { type: 'string' } });
  assert.deepEqual(spec.required, ['targetClusterName', 'gatewayAddress', 'credentialsSecret']);
});

test('unions: integer-or-string is marked, nullable kept, others keep any value', () => {
  assert.deepEqual(structural({ anyOf: [{ type: 'integer' }, { type: 'string' }] }, {}, []), { 'x-kubernetes-int-or-string': true });
  assert.deepEqual(structural({ anyOf: [{ type: 'string' }, { type: 'null' }] }, {}, []), { type: 'string', nullable: true });
  assert.deepEqual(structural({ type: ['boolean', 'string'] }, {}, []), { 'x-kubernetes-preserve-unknown-fields': true });
  assert.deepEqual(structural({ const: 'x', type: 'string' }, {}, []), { type: 'string', enum: ['x'] });
});

test('the kind table covers every kind with its REST coordinates', () => {
  assert.equal(KIND_ROUTES.size, KINDS.length);
  assert.deepEqual(kindRoute('EndpointSlice'), { kind: 'EndpointSlice', group: 'discovery.k8s.io', version: 'v1', versions: ['v1'], plural: 'endpointslices', namespaced: true, custom: false });
  assert.equal(kindRoute('Namespace')!.namespaced, false);
  assert.equal(kindRoute('Deployment')!.group, 'apps');
  assert.equal(kindRoute('Link')!.custom, true);
  assert.equal(kindRoute('TrafficSplit')!.version, 'v1alpha4');
  assert.equal(kindRoute('Nope'), undefined);
});
