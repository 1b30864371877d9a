// What `strait link` checks before writing anything, and what it writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toDocuments } from '../../../src/api/codec.js';
import { validateDocuments } from '../../../src/api/validate.js';
import { linkProblems, linkResources, PRINT_PLACEHOLDER, selectorFrom } from '../../../src/cli/link.js';
import type { ClusterInfo } from '../../../src/control/admin.js';
import { UsageError } from '../../../src/cli/context.js';

const ANCHOR = `${'AB:'.repeat(31)}AB`;
const OTHER = `${'CD:'.repeat(31)}CD`;

function info(cluster: string, overrides: Partial<ClusterInfo> = {}): ClusterInfo {
  return { cluster, clusterId: `id-${cluster}`, gatewayAddress: '127.20.0.2:4143', trustAnchorFingerprints: [ANCHOR], trustDomain: 'cluster.local', version: '0.1.0', ...overrides };
}

test('clusters that share a trust anchor and a trust domain can be linked', () => {
  assert.deepEqual(linkProblems(info('cluster1'), info('cluster2')), []);
  // One common anchor is enough (a bundle mid-rotation holds two).
  assert.deepEqual(linkProblems(info('cluster1', { trustAnchorFingerprints: [OTHER, ANCHOR] }), info('cluster2')), []);
});

test('clusters whose trust anchors differ are refused, naming both anchors and what to do', () => {
  const [problem, ...more] = linkProblems(info('cluster1'), info('cluster2', { trustAnchorFingerprints: [OTHER] }));
  assert.equal(more.length, 0);
  assert.match(problem!, /cluster1 and cluster2 share no trust anchor/);
  assert.ok(problem!.includes(ANCHOR) && problem!.includes(OTHER));
  assert.match(problem!, /same --trust-anchor/);
});

test('different trust domains are refused', () => {
  assert.match(linkProblems(info('cluster1'), info('cluster2', { trustDomain: 'other.example' })).join('\n'), /trust domain cluster.local and cluster2 has other.example/);
});

test('a cluster linked to itself, and two different clusters with the same name, are refused', () => {
  assert.deepEqual(linkProblems(info('cluster1'), info('cluster1')), ['cluster1 is one cluster: a cluster cannot be linked to itself']);
  assert.match(linkProblems(info('cluster1'), info('cluster1', { clusterId: 'another' })).join('\n'), /two different clusters are both named cluster1 \(ids id-cluster1 and another\); rename one/);
});

test('the resources are the namespace, the credential and the Link, valid as manifests', async () => {
  const objects = linkResources(info('cluster1'), info('cluster2'), 'the.token.value', { selector: { matchLabels: { app: 'web' } } });
  assert.deepEqual(objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`), ['Namespace /strait-system', 'Secret strait-system/cluster-credentials-cluster1', 'Link strait-system/cluster1']);
  const secret = objects[1] as unknown as { data: { token: string } };
  assert.equal(Buffer.from(secret.data.token, 'base64').toString(), 'the.token.value');
  assert.deepEqual(objects[2]!.spec, {
    targetClusterName: 'cluster1',
    targetClusterId: 'id-cluster1',
    gatewayAddress: '127.20.0.2:4143',
    credentialsSecret: 'cluster-credentials-cluster1',
    probeSpec: { period: '3s', failureThreshold: 3, timeout: '1s' },
    selector: { matchLabels: { app: 'web' } },
    trustAnchorFingerprint: ANCHOR,
  });
  const validated = await validateDocuments(toDocuments(objects, 'strait link'));
  assert.ok(validated.ok, validated.ok ? '' : validated.errors.map((e) => e.format()).join('\n'));
});

test('--print holds a placeholder, never a token; --gateway-address replaces the advertised address', () => {
  const objects = linkResources(info('cluster1'), info('cluster2'), undefined, { gatewayAddress: '203.0.113.7:4143' });
  assert.deepEqual((objects[1] as unknown as { stringData: unknown }).stringData, { token: PRINT_PLACEHOLDER });
  assert.equal((objects[2]!.spec as { gatewayAddress: string }).gatewayAddress, '203.0.113.7:4143');
});

test('--sameness and --no-sameness set the Link’s spec.sameness; without either the mesh setting holds', async () => {
  const sameness = (request: { sameness?: boolean }) => (linkResources(info('cluster1'), info('cluster2'), undefined, request)[2]!.spec as { sameness?: boolean }).sameness;
  assert.equal(sameness({ sameness: true }), true);
  assert.equal(sameness({ sameness: false }), false);
  assert.equal(sameness({}), undefined);
  const validated = await validateDocuments(toDocuments(linkResources(info('cluster1'), info('cluster2'), 'the.token.value', { sameness: false }), 'strait link'));
  assert.ok(validated.ok, validated.ok ? '' : validated.errors.map((e) => e.format()).join('\n'));
});

test('--selector takes kubectl’s syntax', () => {
  assert.deepEqual(selectorFrom('app=web,tier in (a,b),!canary'), {
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['a', 'b'] },
      { key: 'canary', operator: 'DoesNotExist' },
    ],
  });
  assert.throws(() => selectorFrom('=web'), UsageError);
  assert.throws(() => selectorFrom(' '), /must not be empty/);
});
