// The mirrors of a remote service: the Service and EndpointSlices the link controller writes, what
// a headless service adds, and what is refused of what a remote sends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { ExportedEndpointSchema, ExportedServiceSchema, type ExportedEndpoint, type ExportedService } from '../../../src/api/gen/strait/mesh/v1/mesh_pb.js';
import type { EndpointSlice } from '../../../src/api/kinds/endpointslice.js';
import { exportProblem, mirrorObjects, mirrorProblem, type MirrorOptions } from '../../../src/control/links/mirrors.js';
import { parseEndpointIdentities } from '../../../src/api/kinds/strait.js';
import { validateDocuments } from '../../../src/api/validate.js';
import { toDocuments } from '../../../src/api/codec.js';

const OPTIONS: MirrorOptions = { cluster: 'cluster1', gateway: '127.20.0.2:4143', gatewayAlive: true, trustDomain: 'cluster.local' };

function endpoint(pod: string, address: string, extra: Partial<Omit<ExportedEndpoint, '$typeName' | 'ports'>> & { ports?: { name: string; port: number }[] } = {}): ExportedEndpoint {
  return create(ExportedEndpointSchema, {
    address,
    ports: [{ name: 'http', port: 5000 }],
    pod,
    hostname: '',
    identity: 'spiffe://cluster.local/ns/sample/sa/helloworld',
    sni: `${pod}.sample.cluster1.ep.strait.mesh`,
    ready: true,
    ...extra,
  });
}

function remote(init: Partial<Omit<ExportedService, '$typeName'>> = {}): ExportedService {
  return create(ExportedServiceSchema, {
    namespace: 'sample',
    name: 'helloworld',
    ports: [{ name: 'http', port: 5000, protocol: 'TCP', appProtocol: '' }],
    labels: { app: 'helloworld', 'mirror.linkerd.io/exported': 'true' },
    endpoints: [endpoint('helloworld-v1-a', '127.20.1.1'), endpoint('helloworld-v1-b', '127.20.1.2', { ready: false })],
    ...init,
  });
}

const slices = (objects: { kind: string }[]) => objects.filter((o): o is EndpointSlice => o.kind === 'EndpointSlice');

describe('mirrors', () => {
  it('a mirror Service without selector, labelled as a mirror, with the remote ports and labels but not the export label', () => {
    const { objects, problems } = mirrorObjects(remote(), OPTIONS);
    assert.deepEqual(problems, []);
    const service = objects[0]!;
    assert.equal(service.kind, 'Service');
    assert.equal(service.metadata.name, 'helloworld-cluster1');
    assert.equal(service.metadata.namespace, 'sample');
    assert.deepEqual(service.metadata.labels, { app: 'helloworld', 'mirror.linkerd.io/mirrored-service': 'true', 'mirror.linkerd.io/cluster-name': 'cluster1' });
    assert.equal(service.metadata.annotations!['mirror.linkerd.io/remote-svc-fq-name'], 'helloworld.sample.svc.cluster.local');
    assert.deepEqual(service.spec, { type: 'ClusterIP', ports: [{ name: 'http', protocol: 'TCP', port: 5000, targetPort: 5000 }] });
  });

  it('the endpoints go in an EndpointSlice naming the gateway, each endpoint’s identity and SNI, and its readiness', () => {
    const [slice, ...more] = slices(mirrorObjects(remote(), OPTIONS).objects);
    assert.equal(more.length, 0);
    assert.equal(slice!.metadata.labels!['kubernetes.io/service-name'], 'helloworld-cluster1');
    assert.equal(slice!.metadata.labels!['strait.dev/remote-cluster'], 'cluster1');
    assert.equal(slice!.metadata.labels!['endpointslice.kubernetes.io/managed-by'], 'strait-link-controller');
    assert.equal(slice!.metadata.annotations!['strait.dev/gateway'], '127.20.0.2:4143');
    assert.deepEqual(parseEndpointIdentities(slice!.metadata.annotations!['strait.dev/endpoint-identities']), {
      '127.20.1.1': { identity: 'spiffe://cluster.local/ns/sample/sa/helloworld', sni: 'helloworld-v1-a.sample.cluster1.ep.strait.mesh' },
      '127.20.1.2': { identity: 'spiffe://cluster.local/ns/sample/sa/helloworld', sni: 'helloworld-v1-b.sample.cluster1.ep.strait.mesh' },
    });
    assert.deepEqual(
      slice!.endpoints.map((e) => [e.addresses[0], e.conditions?.ready, e.targetRef?.name]),
      [
        ['127.20.1.1', true, 'helloworld-v1-a'],
        ['127.20.1.2', false, 'helloworld-v1-b'],
      ],
    );
    assert.deepEqual(slice!.ports, [{ name: 'http', port: 5000, protocol: 'TCP' }]);
  });

  it('with the gateway down every endpoint is written not ready, and nothing else changes', () => {
    const up = mirrorObjects(remote(), OPTIONS).objects;
    const down = mirrorObjects(remote(), { ...OPTIONS, gatewayAlive: false }).objects;
    assert.deepEqual(slices(down)[0]!.endpoints.map((e) => e.conditions?.ready), [false, false]);
    assert.deepEqual(down.map((o) => o.metadata.name), up.map((o) => o.metadata.name));
  });

  it('what the mirrors are is valid as a manifest would be', async () => {
    const { objects } = mirrorObjects(remote({ headless: true, endpoints: [endpoint('web-0', '127.20.1.1', { hostname: 'web-0' })] }), OPTIONS);
    const result = await validateDocuments(toDocuments(objects, 'mirrors'));
    assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.format()).join('\n'));
  });

  it('a headless service also gets one mirror per instance, each with its own endpoint', () => {
    const { objects } = mirrorObjects(
      remote({ name: 'web', headless: true, endpoints: [endpoint('web-0', '127.20.1.1', { hostname: 'web-0' }), endpoint('web-1', '127.20.1.2', { hostname: 'web-1' })] }),
      OPTIONS,
    );
    const services = objects.filter((o) => o.kind === 'Service');
    assert.deepEqual(services.map((s) => [s.metadata.name, (s.spec as { clusterIP?: string }).clusterIP ?? '', s.metadata.labels!['mirror.linkerd.io/headless-mirror-svc-name'] ?? '']), [
      ['web-cluster1', 'None', ''],
      ['web-0-cluster1', '', 'web-cluster1'],
      ['web-1-cluster1', '', 'web-cluster1'],
    ]);
    const bySlice = slices(objects).map((s) => [s.metadata.labels!['kubernetes.io/service-name'], s.endpoints.map((e) => e.hostname)]);
    assert.deepEqual(bySlice, [
      ['web-cluster1', ['web-0', 'web-1']],
      ['web-0-cluster1', ['web-0']],
      ['web-1-cluster1', ['web-1']],
    ]);
  });

  it('endpoints with different ports go in different slices', () => {
    const { objects } = mirrorObjects(remote({ endpoints: [endpoint('a', '127.20.1.1'), endpoint('b', '127.20.1.2', { ports: [{ name: 'http', port: 8080 }] })] }), OPTIONS);
    assert.deepEqual(slices(objects).map((s) => [s.ports![0]!.port, s.endpoints.length]), [
      [5000, 1],
      [8080, 1],
    ]);
  });

  it('an endpoint whose identity, SNI or address does not make sense is left out, saying why', () => {
    const { objects, problems } = mirrorObjects(
      remote({
        endpoints: [
          endpoint('good', '127.20.1.1'),
          endpoint('foreign', '127.20.1.2', { identity: 'spiffe://elsewhere.example/ns/sample/sa/x' }),
          endpoint('misrouted', '127.20.1.3', { sni: 'misrouted.sample.cluster9.ep.strait.mesh' }),
          endpoint('gateway', '127.20.1.4', { sni: 'api.cluster1.gw.strait.mesh' }),
          endpoint('nowhere', 'not-an-ip'),
        ],
      }),
      OPTIONS,
    );
    assert.deepEqual(slices(objects)[0]!.endpoints.map((e) => e.targetRef?.name), ['good']);
    assert.equal(problems.length, 4);
    assert.match(problems.join('\n'), /foreign: identity "spiffe:\/\/elsewhere.example\/ns\/sample\/sa\/x" is not a workload of trust domain cluster.local/);
    assert.match(problems.join('\n'), /misrouted: SNI "misrouted.sample.cluster9.ep.strait.mesh" is not an endpoint route key of cluster cluster1/);
    assert.match(problems.join('\n'), /nowhere: address "not-an-ip" is not an IP address/);
  });
});

describe('what is not mirrored', () => {
  it('a remote that sends a mirror of a mirror is ignored', () => {
    const mirrorOfMirror = remote({ name: 'helloworld-cluster2', labels: { 'mirror.linkerd.io/mirrored-service': 'true', 'mirror.linkerd.io/cluster-name': 'cluster2' } });
    assert.equal(exportProblem(mirrorOfMirror, 'cluster1'), 'service sample/helloworld-cluster2 of cluster cluster1 is itself a mirror (of cluster cluster2); a mirror is never mirrored again');
  });

  it('names that cannot be a Service here are refused', () => {
    assert.match(exportProblem(remote({ namespace: 'Bad_NS' }), 'cluster1')!, /namespace/);
    assert.equal(exportProblem(remote({ name: 'x'.repeat(60) }), 'cluster1'), undefined);
    assert.match(mirrorProblem(remote({ name: 'x'.repeat(60) }), 'cluster1')!, /its mirror name "x{60}-cluster1" must be no more than 63 characters/);
    assert.equal(exportProblem(remote(), 'cluster1'), undefined);
    assert.equal(mirrorProblem(remote(), 'cluster1'), undefined);
  });
});
