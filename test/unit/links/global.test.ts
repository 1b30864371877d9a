// One service across clusters, the pure parts: what a cluster sends to which caller (mirror,
// global, clusterset member, namespace sameness, export-to), the member slices an importing cluster
// writes, and how members' definitions resolve into a ServiceImport, conflicts and all.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { ExportedEndpointSchema, ExportedServiceSchema, type ExportedService } from '../../../src/api/gen/strait/mesh/v1/mesh_pb.js';
import { toDocuments } from '../../../src/api/codec.js';
import type { Service, ServiceExport } from '../../../src/api/kinds.js';
import type { EndpointSlice } from '../../../src/api/kinds/endpointslice.js';
import { managedObjectProblem } from '../../../src/api/kinds/mcs.js';
import { parseRemoteServiceSpec } from '../../../src/api/kinds/strait.js';
import { validateDocuments } from '../../../src/api/validate.js';
import { localMember, remoteMembers, resolve, serviceImportFor, type Member } from '../../../src/control/links/imports.js';
import { memberSlices, type MirrorOptions } from '../../../src/control/links/mirrors.js';
import { exportFlags, exportToCondition, type ExportRule } from '../../../src/control/mesh-api/exports.js';

const T1 = '2024-01-01T00:00:00Z';
const T2 = '2024-06-01T00:00:00Z';

function svc(name: string, options: { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; created?: string; ports?: { name?: string; port: number; appProtocol?: string }[]; headless?: boolean } = {}): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: options.namespace ?? 'sample', labels: options.labels, annotations: options.annotations, creationTimestamp: options.created ?? T1 },
    spec: {
      type: 'ClusterIP',
      ...(options.headless ? { clusterIP: 'None' } : {}),
      selector: { app: name },
      ports: (options.ports ?? [{ name: 'http', port: 9080 }]).map((p) => ({ protocol: 'TCP' as const, targetPort: p.port, ...p })),
    },
  };
}

const serviceExport = (name: string, created = T2): ServiceExport => ({
  apiVersion: 'multicluster.x-k8s.io/v1alpha1',
  kind: 'ServiceExport',
  metadata: { name, namespace: 'sample', creationTimestamp: created },
});

const GLOBAL = { 'service.cilium.io/global': 'true' };
const toCluster2: ExportRule = { sameness: false, consumer: 'cluster2' };

describe('what a cluster sends to a linked cluster', () => {
  it('an export label makes a mirror; a global annotation (either one) makes a global member', () => {
    assert.deepEqual(exportFlags(svc('a', { labels: { 'mirror.linkerd.io/exported': 'true' } }), undefined, toCluster2), { mirror: true, global: false, serviceExport: false, created: T1 });
    assert.deepEqual(exportFlags(svc('b', { annotations: GLOBAL }), undefined, toCluster2), { mirror: false, global: true, serviceExport: false, created: T1 });
    assert.equal(exportFlags(svc('c', { annotations: { 'strait.dev/global': 'true' } }), undefined, toCluster2)?.global, true);
    assert.equal(exportFlags(svc('d'), undefined, toCluster2), undefined);
  });

  it('shared "false" keeps a global service home', () => {
    assert.equal(exportFlags(svc('a', { annotations: { ...GLOBAL, 'service.cilium.io/shared': 'false' } }), undefined, toCluster2), undefined);
    assert.equal(exportFlags(svc('a', { annotations: { ...GLOBAL, 'service.cilium.io/shared': 'true' } }), undefined, toCluster2)?.global, true);
  });

  it('a ServiceExport sends the Service as a clusterset member, dated by the export', () => {
    assert.deepEqual(exportFlags(svc('a'), serviceExport('a'), toCluster2), { mirror: false, global: false, serviceExport: true, created: T2 });
    // Global too: the Service's own date counts, as for every global member.
    assert.deepEqual(exportFlags(svc('a', { annotations: GLOBAL }), serviceExport('a'), toCluster2), { mirror: false, global: true, serviceExport: true, created: T1 });
  });

  it('under namespace sameness every service goes as global, but not mirrors, system namespaces or shared "false"', () => {
    const sameness: ExportRule = { sameness: true, consumer: 'cluster2' };
    assert.equal(exportFlags(svc('reviews'), undefined, sameness)?.global, true);
    assert.equal(exportFlags(svc('x', { namespace: 'strait-system' }), undefined, sameness), undefined);
    assert.equal(exportFlags(svc('x', { namespace: 'kube-system' }), undefined, sameness), undefined);
    assert.equal(exportFlags(svc('x', { annotations: { 'service.cilium.io/shared': 'false' } }), undefined, sameness), undefined);
    const mirror = svc('reviews-cluster3', { labels: { 'mirror.linkerd.io/mirrored-service': 'true', 'mirror.linkerd.io/cluster-name': 'cluster3' } });
    assert.equal(exportFlags(mirror, undefined, sameness), undefined);
  });

  it('export-to sends only to the clusters it names; a list that does not parse sends nowhere', () => {
    const restricted = svc('a', { annotations: { ...GLOBAL, 'strait.dev/export-to': 'cluster2, cluster3' } });
    assert.equal(exportFlags(restricted, undefined, toCluster2)?.global, true);
    assert.equal(exportFlags(restricted, undefined, { sameness: false, consumer: 'cluster4' }), undefined);
    // The gateway routes what any linked cluster may be sent.
    assert.equal(exportFlags(restricted, undefined, { sameness: false })?.global, true);
    assert.equal(exportFlags(svc('b', { annotations: { ...GLOBAL, 'strait.dev/export-to': 'cluster2,,' } }), undefined, toCluster2), undefined);
    assert.equal(exportFlags(svc('b', { annotations: { ...GLOBAL, 'strait.dev/export-to': 'cluster2,,' } }), undefined, { sameness: false }), undefined);
  });

  it('export-to naming a cluster without a link is a warning condition on the Service', () => {
    const service = svc('a', { annotations: { 'strait.dev/export-to': 'cluster2,cluster3,cluster4' } });
    const condition = exportToCondition(service, new Set(['cluster2']), 'cluster1');
    assert.equal(condition?.type, 'strait.dev/ExportTo');
    assert.equal(condition?.status, 'False');
    assert.equal(condition?.reason, 'UnknownCluster');
    assert.match(condition.message, /names clusters cluster3, cluster4, which have no link to cluster1: nothing is exported there/);
    assert.equal(exportToCondition(service, new Set(['cluster2', 'cluster3', 'cluster4']), 'cluster1'), undefined);
    assert.equal(exportToCondition(svc('b'), new Set(), 'cluster1'), undefined);
  });

  it('export-to that does not parse is refused at apply, naming the annotation', async () => {
    const bad = svc('a', { annotations: { 'strait.dev/export-to': 'cluster2,cluster2' } });
    const result = await validateDocuments(toDocuments([bad], 'svc.yaml'));
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.errors.map((e) => e.format()).join('\n'), /metadata\.annotations\["strait\.dev\/export-to"\]: "cluster2" is named twice/);
  });

  it('a ServiceImport is the control plane’s: a user’s is refused, saying what to do instead', () => {
    const problem = managedObjectProblem({ apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceImport', metadata: { name: 'reviews', namespace: 'sample' } });
    assert.equal(problem, 'ServiceImport sample/reviews is managed by Strait: export the Service with a ServiceExport in the exporting cluster');
    assert.equal(managedObjectProblem(serviceExport('reviews')), undefined);
  });
});

const OPTIONS: MirrorOptions = { cluster: 'cluster2', gateway: '127.20.0.34:4143', gatewayAlive: true, trustDomain: 'cluster.local', region: 'eu-west' };

function remote(init: Partial<Omit<ExportedService, '$typeName'>> = {}): ExportedService {
  return create(ExportedServiceSchema, {
    namespace: 'sample',
    name: 'reviews',
    ports: [{ name: 'http', port: 9080, protocol: 'TCP', appProtocol: '' }],
    endpoints: [1, 2].map((i) =>
      create(ExportedEndpointSchema, {
        address: `127.20.2.${i}`,
        ports: [{ name: 'http', port: 9080 }],
        pod: `reviews-v2-${i}`,
        identity: 'spiffe://cluster.local/ns/sample/sa/reviews',
        sni: `reviews-v2-${i}.sample.cluster2.ep.strait.mesh`,
        ready: true,
      }),
    ),
    global: true,
    created: T1,
    ...init,
  });
}

describe('member slices', () => {
  it('a global member’s slices carry the service’s own name, the clusterset name, the cluster and its region, and the definition', async () => {
    const { objects, problems } = memberSlices(remote(), 'global', OPTIONS);
    assert.deepEqual(problems, []);
    assert.equal(objects.length, 1);
    const slice = objects[0] as EndpointSlice;
    assert.match(slice.metadata.name, /^reviews-cluster2-global-[0-9a-f]{8}$/);
    assert.deepEqual(slice.metadata.labels, {
      'kubernetes.io/service-name': 'reviews',
      'multicluster.kubernetes.io/service-name': 'reviews',
      'topology.kubernetes.io/region': 'eu-west',
      'endpointslice.kubernetes.io/managed-by': 'strait-link-controller',
      'strait.dev/remote-cluster': 'cluster2',
      'mirror.linkerd.io/cluster-name': 'cluster2',
    });
    assert.equal(slice.metadata.annotations!['strait.dev/gateway'], '127.20.0.34:4143');
    assert.equal(slice.metadata.annotations!['strait.dev/remote-service'], 'sample/reviews');
    assert.deepEqual(parseRemoteServiceSpec(slice.metadata.annotations!['strait.dev/remote-service-spec']), {
      ports: [{ name: 'http', port: 9080, appProtocol: '' }],
      headless: false,
      created: T1,
      global: true,
      serviceExport: false,
    });
    assert.deepEqual(slice.endpoints.map((e) => [e.addresses[0], e.conditions?.ready]), [
      ['127.20.2.1', true],
      ['127.20.2.2', true],
    ]);
    const valid = await validateDocuments(toDocuments(objects, 'members'));
    assert.ok(valid.ok, valid.ok ? '' : valid.errors.map((e) => e.format()).join('\n'));
  });

  it('a clusterset member’s slices lack the cluster-local name, so the local Service does not merge them', () => {
    const slice = memberSlices(remote({ global: false, serviceExport: true }), 'import', { ...OPTIONS, region: undefined }).objects[0]!;
    assert.match(slice.metadata.name, /^reviews-cluster2-import-[0-9a-f]{8}$/);
    assert.equal(slice.metadata.labels!['kubernetes.io/service-name'], undefined);
    assert.equal(slice.metadata.labels!['multicluster.kubernetes.io/service-name'], 'reviews');
    assert.equal(slice.metadata.labels!['topology.kubernetes.io/region'], undefined);
  });

  it('a member without endpoints still has one empty slice; with the gateway down, endpoints are not ready', () => {
    const empty = memberSlices(remote({ endpoints: [] }), 'global', OPTIONS).objects as EndpointSlice[];
    assert.equal(empty.length, 1);
    assert.deepEqual(empty[0]!.endpoints, []);
    const down = memberSlices(remote(), 'global', { ...OPTIONS, gatewayAlive: false }).objects as EndpointSlice[];
    assert.deepEqual(down[0]!.endpoints.map((e) => e.conditions?.ready), [false, false]);
    assert.equal(down[0]!.metadata.name, (memberSlices(remote(), 'global', OPTIONS).objects[0] as EndpointSlice).metadata.name);
  });

  it('the importing side reads the definitions back, one per cluster', () => {
    const slices = [...memberSlices(remote(), 'global', OPTIONS).objects, ...memberSlices(remote({ created: T2 }), 'global', { ...OPTIONS, cluster: 'cluster3' }).objects] as EndpointSlice[];
    assert.deepEqual(remoteMembers(slices).map((m) => [m.cluster, m.created, m.global]), [
      ['cluster2', T1, true],
      ['cluster3', T2, true],
    ]);
  });
});

const member = (cluster: string, created: string, init: Partial<Member> = {}): Member => ({
  cluster,
  ports: [{ name: 'http', port: 9080, appProtocol: '' }],
  headless: false,
  created,
  global: true,
  serviceExport: false,
  ...init,
});

describe('resolving members into a ServiceImport', () => {
  it('alike members make one global ServiceImport over every cluster, without conflict', () => {
    const resolution = resolve('sample/reviews', [member('cluster2', T2), member('cluster1', T1)])!;
    assert.equal(resolution.conflict, undefined);
    assert.deepEqual(resolution.clusters, ['cluster1', 'cluster2']);
    const object = serviceImportFor('sample', 'reviews', resolution);
    assert.deepEqual(object.metadata, { name: 'reviews', namespace: 'sample', labels: { 'app.kubernetes.io/managed-by': 'strait' }, annotations: { 'strait.dev/global': 'true' } });
    assert.deepEqual(object.spec, { type: 'ClusterSetIP', ports: [{ name: 'http', protocol: 'TCP', port: 9080 }] });
  });

  it('conflicting ports: the oldest definition wins, and the message names both clusters and the winner', () => {
    const resolution = resolve('sample/reviews', [member('cluster1', T2), member('cluster2', T1, { ports: [{ name: 'http', port: 9081, appProtocol: '' }] })])!;
    assert.equal(resolution.winner.cluster, 'cluster2');
    assert.deepEqual(resolution.ports, [{ name: 'http', protocol: 'TCP', port: 9081 }]);
    assert.equal(resolution.conflict?.reason, 'PortConflict');
    assert.match(resolution.conflict.message, /clusters cluster2, cluster1 define service sample\/reviews differently \(ports\): .*the oldest definition, cluster2's \(2024-01-01T00:00:00Z\), wins/);
  });

  it('headless against not is a TypeConflict; equal ages fall to the cluster name', () => {
    const resolution = resolve('sample/web', [member('cluster2', T1, { headless: true }), member('cluster1', T1)])!;
    assert.equal(resolution.winner.cluster, 'cluster1');
    assert.equal(resolution.type, 'ClusterSetIP');
    assert.equal(resolution.conflict?.reason, 'TypeConflict');
  });

  it('a clusterset service has the union of its members’ ports; a name or number already taken stays the older member’s', () => {
    const mcs = (cluster: string, created: string, ports: Member['ports']) => member(cluster, created, { global: false, serviceExport: true, ports });
    const resolution = resolve('sample/db', [
      mcs('cluster1', T1, [{ name: 'sql', port: 5432, appProtocol: 'tcp' }]),
      mcs('cluster2', T2, [
        { name: 'sql', port: 5433, appProtocol: 'tcp' },
        { name: 'metrics', port: 9090, appProtocol: '' },
      ]),
    ])!;
    assert.deepEqual(resolution.ports, [
      { name: 'sql', protocol: 'TCP', appProtocol: 'tcp', port: 5432 },
      { name: 'metrics', protocol: 'TCP', port: 9090 },
    ]);
    assert.equal(resolution.global, false);
    assert.equal(resolution.conflict?.reason, 'PortConflict');
    assert.equal(serviceImportFor('sample', 'db', resolution).metadata.annotations, undefined);
  });

  it('no member, no ServiceImport', () => {
    assert.equal(resolve('sample/x', []), undefined);
  });

  it('the local Service takes part when global, exported, or merging a linked cluster’s global member', () => {
    const remoteGlobal = [member('cluster2', T1)];
    assert.equal(localMember('cluster1', svc('reviews'), undefined, []), undefined);
    assert.equal(localMember('cluster1', svc('reviews'), undefined, remoteGlobal)?.global, true);
    assert.deepEqual(localMember('cluster1', svc('reviews', { annotations: GLOBAL }), undefined, []), member('cluster1', T1, { ports: [{ name: 'http', port: 9080, appProtocol: '' }] }));
    const exported = localMember('cluster1', svc('reviews'), serviceExport('reviews'), [])!;
    assert.deepEqual([exported.global, exported.serviceExport, exported.created], [false, true, T2]);
    assert.equal(localMember('cluster1', undefined, serviceExport('reviews'), remoteGlobal), undefined);
  });
});
