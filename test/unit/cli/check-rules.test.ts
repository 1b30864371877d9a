// The conclusions `strait check` draws from a cluster's state: each × names the object and says
// what to do; the text and JSON forms.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../../../src/api/kinds.js';
import type { EndpointSlice } from '../../../src/api/kinds/endpointslice.js';
import type { Secret } from '../../../src/api/kinds/secret.js';
import type { Link, LinkStatus } from '../../../src/api/kinds/strait.js';
import type { Resource } from '../../../src/api/types.js';
import {
  checksJson,
  controlPlaneChecks,
  dataPlaneChecks,
  formatChecks,
  identityChecks,
  multiclusterChecks,
  type CheckResult,
  type MulticlusterFacts,
} from '../../../src/cli/check-rules.js';

const byName = (results: CheckResult[], name: string) => {
  const found = results.find((r) => r.name === name);
  assert.ok(found, `no check "${name}" among ${results.map((r) => r.name).join(', ')}`);
  return found;
};

describe('control plane checks', () => {
  it('passes a running control plane of the same version, and names both versions when they differ', () => {
    const ok = controlPlaneChecks('c1', { cluster: 'c1', version: '1.0.0', pid: 7, ready: true }, '1.0.0', '/log');
    assert.ok(ok.every((r) => r.ok));
    const [, versions] = controlPlaneChecks('c1', { cluster: 'c1', version: '0.9.0', pid: 7, ready: true }, '1.0.0', '/log');
    assert.equal(versions!.ok, false);
    assert.deepEqual(versions!.details, ['the control plane of c1 runs 0.9.0, the CLI is 1.0.0']);
    assert.match(versions!.hints[0]!, /strait up/);
  });

  it('says where the log is when the control plane is not running', () => {
    const [r] = controlPlaneChecks('c1', { error: new Error('ENOENT'), running: false }, '1.0.0', '/home/c1/control-plane.log');
    assert.equal(r!.ok, false);
    assert.deepEqual(r!.details, ['the control plane of c1 is not running']);
    assert.match(r!.hints[0]!, /\/home\/c1\/control-plane\.log; start it with: strait up$/);
  });
});

describe('identity checks', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const anchor = { subject: 'CN=root', notBefore: '2029-01-01T00:00:00Z', notAfter: '2039-01-01T00:00:00Z' };
  const issuer = (notAfter: string) => ({ subject: 'CN=issuer', notBefore: '2029-06-01T00:00:00Z', notAfter });

  it('passes a valid issuer under a valid anchor', () => {
    const results = identityChecks('c1', { anchors: [anchor], issuer: issuer('2031-01-01T00:00:00Z') }, now);
    assert.deepEqual(results.map((r) => [r.name, r.ok]), [
      ['trust anchors are within their validity period', true],
      ['issuer certificate is within its validity period', true],
      ['issuer certificate is valid for at least 24h', true],
      ['issuer certificate is issued by the trust anchors', true],
    ]);
  });

  it('fails an issuer that expires within a day, and one that has expired', () => {
    const soon = byName(identityChecks('c1', { anchors: [anchor], issuer: issuer('2030-01-01T03:00:00Z') }, now), 'issuer certificate is valid for at least 24h');
    assert.equal(soon.ok, false);
    assert.match(soon.details[0]!, /^issuer certificate 'CN=issuer' expires in 3h/);
    assert.match(soon.hints[0]!, /strait up --clusters c1 --trust-anchor/);
    const expired = identityChecks('c1', { anchors: [anchor], issuer: issuer('2029-12-01T00:00:00Z') }, now);
    assert.equal(byName(expired, 'issuer certificate is within its validity period').details[0], "issuer certificate 'CN=issuer' expired on 2029-12-01T00:00:00Z");
  });

  it('fails an issuer that does not chain to the anchors, and an expired anchor', () => {
    const chain = byName(identityChecks('c1', { anchors: [anchor], issuer: issuer('2031-01-01T00:00:00Z'), chainProblem: 'issued by someone else' }, now), 'issuer certificate is issued by the trust anchors');
    assert.deepEqual([chain.ok, chain.details], [false, ['issued by someone else']]);
    const old = { ...anchor, notAfter: '2029-12-31T00:00:00Z' };
    const anchors = byName(identityChecks('c1', { anchors: [old], issuer: issuer('2031-01-01T00:00:00Z') }, now), 'trust anchors are within their validity period');
    assert.deepEqual([anchors.ok, anchors.details], [false, ["trust anchor 'CN=root' expired on 2029-12-31T00:00:00Z"]]);
  });
});

describe('data plane checks', () => {
  const pod = (name: string, opts: { version?: string; phase?: 'Running' | 'Pending'; proxyReady?: boolean; meshed?: boolean } = {}): Pod =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: 'default',
        annotations: opts.version === undefined ? {} : { 'strait.dev/proxy-version': opts.version },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'u' }],
      },
      spec: { containers: [{ name: 'app', image: 'x' }, ...(opts.meshed === false ? [] : [{ name: 'strait-proxy', image: 'strait/proxy' }])] },
      status: {
        phase: opts.phase ?? 'Running',
        containerStatuses: [
          { name: 'app', image: 'x', ready: true, restartCount: 0 },
          { name: 'strait-proxy', image: 'strait/proxy', ready: opts.proxyReady ?? true, restartCount: 0 },
        ],
      },
    });

  it('passes ready proxies of the CLI version and ignores pods without a proxy', () => {
    const results = dataPlaneChecks('c1', [pod('a', { version: '1.0.0' }), pod('plain', { meshed: false })], new Map(), '1.0.0');
    assert.ok(results.every((r) => r.ok));
    assert.deepEqual(results[0]!.details, ['1 meshed pod']);
  });

  it('names each pod whose proxy is not ready, and why', () => {
    const results = dataPlaneChecks('c1', [pod('a', { version: '1.0.0', phase: 'Pending' }), pod('b', { version: '1.0.0', proxyReady: false }), pod('c', { version: '1.0.0' })], new Map([['default/c', 'HTTP 500']]), '1.0.0');
    const ready = byName(results, 'data plane proxies are ready');
    assert.deepEqual(ready.details, ['Pod default/a: is Pending', 'Pod default/b: its proxy is not ready', 'Pod default/c: the control plane cannot read its proxy: HTTP 500']);
    assert.match(ready.hints[0]!, /strait logs a -c strait-proxy -n default --cluster c1/);
  });

  it('fails a proxy of another version or of none, saying how to restart the pod', () => {
    const versions = byName(dataPlaneChecks('c1', [pod('a', { version: '0.0.0' }), pod('b')], new Map(), '1.0.0'), 'data plane and cli versions match');
    assert.equal(versions.ok, false);
    assert.equal(versions.details[0], 'Pod default/a runs proxy 0.0.0, the CLI is 1.0.0');
    assert.match(versions.details[1]!, /^Pod default\/b runs proxy of an unknown version \(no strait\.dev\/proxy-version annotation\)/);
    assert.equal(versions.hints[0], 'restart it so it gets the current proxy: strait delete pod a -n default --cluster c1 (its Deployment web makes a new one)');
  });
});

describe('multicluster checks', () => {
  const FP = 'AB:'.repeat(31) + 'AB';
  const status = (alive: boolean | undefined, synced: { status: 'True' | 'False'; reason: string; message: string } = { status: 'True', reason: 'Synced', message: '' }): LinkStatus => ({
    conditions: [{ type: 'Synced', ...synced, lastTransitionTime: '' }],
    clusterId: 'id',
    services: 1,
    gateway: { ...(alive === undefined ? {} : { alive }), consecutiveFailures: alive === false ? 3 : 0, ...(alive === false ? { lastError: 'connect ECONNREFUSED' } : { latencyMs: { p50: 1.24, p95: 2, p99: 3 } }) },
  });
  const link = (name: string, namespace = 'strait-system', fingerprint = FP): Link => ({
    apiVersion: 'strait.dev/v1alpha1',
    kind: 'Link',
    metadata: { name, namespace },
    spec: { targetClusterName: name, gatewayAddress: '127.0.0.9:4143', credentialsSecret: `cluster-credentials-${name}`, probeSpec: { period: '3s', failureThreshold: 3, timeout: '1s' }, trustAnchorFingerprint: fingerprint },
  });
  const secret = (name: string): Secret => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'strait-system' }, data: { token: Buffer.from('t').toString('base64') } });
  const mirror = (name: string, cluster: string): Resource => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', labels: { 'mirror.linkerd.io/mirrored-service': 'true', 'mirror.linkerd.io/cluster-name': cluster } },
  });
  const slice = (service: string, ready: boolean): EndpointSlice =>
    ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${service}-x`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.5'], conditions: { ready } }],
    });
  const facts = (over: Partial<MulticlusterFacts> = {}): MulticlusterFacts => ({
    cluster: 'c2',
    otherClusters: ['c1'],
    links: [link('c1')],
    controllers: { c1: status(true) },
    secrets: new Map([['cluster-credentials-c1', secret('cluster-credentials-c1')]]),
    ownAnchors: [FP],
    gateway: { address: '127.0.0.10:4143', running: true },
    mirrors: [mirror('web-c1', 'c1')],
    slices: [slice('web-c1', true)],
    ...over,
  });

  it('passes a synced link with a live gateway, listing the links and the latency', () => {
    const results = multiclusterChecks(facts());
    assert.ok(results.every((r) => r.ok), JSON.stringify(results.filter((r) => !r.ok)));
    assert.deepEqual(byName(results, 'remote gateways are alive').details, ['c1 (latency p50 1.2ms, p99 3.0ms)']);
    assert.deepEqual(byName(results, 'Link resources are valid').details, ['c1']);
  });

  it('with no Links says which command links one', () => {
    const results = multiclusterChecks(facts({ links: [], controllers: {}, mirrors: [], slices: [] }));
    const valid = byName(results, 'Link resources are valid');
    assert.deepEqual([valid.ok, valid.details, valid.hints], [false, ['no Links in cluster c2'], ['link a cluster: strait link --from c1 --to c2']]);
    assert.ok(!results.some((r) => r.name === 'remote gateways are alive'));
  });

  it('fails a dead gateway, and says the mirrors behind it have no endpoints because of it', () => {
    const results = multiclusterChecks(facts({ controllers: { c1: status(false) }, slices: [slice('web-c1', false)] }));
    const gateways = byName(results, 'remote gateways are alive');
    assert.deepEqual(gateways.details, ['Link strait-system/c1: the gateway of c1 at 127.0.0.9:4143 is not alive: 3 probes failed in a row; last: connect ECONNREFUSED']);
    assert.match(gateways.hints[0]!, /^see: strait gateways --cluster c2; .*strait gateway start --cluster c1/);
    const endpoints = byName(results, 'all mirror services have endpoints');
    assert.deepEqual(endpoints.details, ['Service default/web-c1 (mirror of c1) has no ready endpoints: the gateway of c1 is not alive']);
  });

  it('fails a missing credential, a rejected one, and a link made under another trust anchor', () => {
    const missing = byName(multiclusterChecks(facts({ secrets: new Map() })), 'remote cluster access credentials are valid');
    assert.match(missing.details[0]!, /^Link strait-system\/c1: its credential, secret strait-system\/cluster-credentials-c1 \(spec.credentialsSecret\), does not exist$/);
    assert.deepEqual(missing.hints, ['link again: strait link --from c1 --to c2']);
    const rejected = multiclusterChecks(facts({ controllers: { c1: status(true, { status: 'False', reason: 'CredentialsRejected', message: 'cluster c1 refused the link credential: revoked' }) } }));
    assert.deepEqual(byName(rejected, 'remote cluster access credentials are valid').details, ['Link strait-system/c1: cluster c1 refused the link credential: revoked']);
    assert.equal(byName(rejected, 'link controllers are running').ok, false);
    const anchors = byName(multiclusterChecks(facts({ ownAnchors: ['CD:'.repeat(31) + 'CD'] })), 'clusters share trust anchors');
    assert.match(anchors.details[0]!, /^Link strait-system\/c1 was made with trust anchor AB:AB:.*, which cluster c2 does not have$/);
  });

  it('fails a Link outside strait-system and a link with no running controller', () => {
    const results = multiclusterChecks(facts({ links: [link('c1'), link('c3', 'default')], controllers: {} }));
    assert.match(byName(results, 'Link resources are valid').details[0]!, /^Link default\/c3 is not in namespace strait-system, so it does nothing$/);
    assert.match(byName(results, 'link controllers are running').details[0]!, /^Link strait-system\/c1: no link controller runs for it/);
  });

  it("fails an orphaned mirror and a stopped gateway of this cluster's own", () => {
    const results = multiclusterChecks(facts({ mirrors: [mirror('web-c1', 'c1'), mirror('web-gone', 'gone')], gateway: { address: '127.0.0.10:4143', running: false } }));
    const orphans = byName(results, 'all mirror services are part of a Link');
    assert.deepEqual(orphans.details, ['Service default/web-gone: orphaned mirror of cluster gone, which has no Link in c2']);
    assert.deepEqual(orphans.hints, ['delete it (strait delete svc web-gone -n default --cluster c2) or re-link: strait link --from gone --to c2']);
    assert.ok(byName(results, 'all mirror services have endpoints').ok);
    assert.deepEqual(byName(results, "this cluster's gateway is running").hints, ['start it: strait gateway start --cluster c2']);
  });
});

describe('output', () => {
  const results: CheckResult[] = [
    { section: 'strait-a', name: 'one holds', ok: true, details: ['x'], hints: [] },
    { section: 'strait-b', name: 'two holds', ok: false, details: ['Pod p: broken'], hints: ['fix it: strait do'] },
  ];

  it('prints sections, √/× lines, details and hints, and the summary', () => {
    assert.equal(
      formatChecks(results),
      ['strait-a', '--------', '√ one holds', '    * x', '', 'strait-b', '--------', '× two holds', '    * Pod p: broken', '    fix it: strait do', '', 'Status check results are ×'].join('\n'),
    );
    assert.match(formatChecks(results.slice(0, 1)), /\nStatus check results are √$/);
  });

  it('gives JSON with name, ok, message and hint', () => {
    assert.deepEqual(checksJson('c1', results), {
      cluster: 'c1',
      ok: false,
      checks: [
        { section: 'strait-a', name: 'one holds', ok: true, message: 'x' },
        { section: 'strait-b', name: 'two holds', ok: false, message: 'Pod p: broken', hint: 'fix it: strait do' },
      ],
    });
  });
});
