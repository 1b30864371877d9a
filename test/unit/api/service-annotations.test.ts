// The annotations that choose among a global service's clusters, checked where manifests are: an
// affinity that is none of local|remote|none and a failover list that is not a list of names are
// refused by validation, naming the document, the field, the value and what is accepted; a
// failover entry that is neither a cluster nor a region of the mesh is refused by apply's check.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../../src/api/codec.js';
import type { Resource } from '../../../src/api/types.js';
import { validateDocuments } from '../../../src/api/validate.js';
import { serviceMeshProblems } from '../../../src/cli/mesh-checks.js';

function serviceYaml(annotations: Record<string, string>): string {
  const lines = Object.entries(annotations).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  return ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: userlist-svc', '  namespace: song', '  annotations:', ...lines, 'spec:', '  ports: [{port: 80, targetPort: 8181}]', ''].join('\n');
}

async function problems(annotations: Record<string, string>): Promise<string[]> {
  const result = await validateDocuments(parseManifests(serviceYaml(annotations), 'userlist.yaml'));
  return result.ok ? [] : result.errors.map((e) => e.format());
}

const AT = 'userlist.yaml: document 1 (Service userlist-svc): metadata.annotations';

describe('Service annotations at apply', () => {
  it('accepts each affinity, and failover lists of names', async () => {
    for (const affinity of ['local', 'remote', 'none']) assert.deepEqual(await problems({ 'service.cilium.io/affinity': affinity }), []);
    assert.deepEqual(await problems({ 'strait.dev/failover': 'cluster2, cluster3' }), []);
    assert.deepEqual(await problems({ 'strait.dev/failover': 'eu-west' }), []);
  });

  it('refuses an unknown affinity, naming the value and the accepted ones', async () => {
    assert.deepEqual(await problems({ 'service.cilium.io/affinity': 'nearest' }), [
      `${AT}["service.cilium.io/affinity"]: "nearest" is not an affinity: use one of local, remote, none`,
    ]);
    assert.deepEqual(await problems({ 'service.cilium.io/affinity': '' }), [`${AT}["service.cilium.io/affinity"]: "" is not an affinity: use one of local, remote, none`]);
  });

  it('refuses a failover list with an empty entry, an invalid name or a repeated name', async () => {
    const field = `${AT}["strait.dev/failover"]`;
    assert.deepEqual(await problems({ 'strait.dev/failover': 'cluster2,,cluster3' }), [
      `${field}: "cluster2,,cluster3" has an empty entry: write names separated by commas, e.g. "cluster2,cluster3"`,
    ]);
    assert.deepEqual(await problems({ 'strait.dev/failover': '' }), [`${field}: "" has an empty entry: write names separated by commas, e.g. "cluster2,cluster3"`]);
    assert.deepEqual(await problems({ 'strait.dev/failover': 'cluster2,Cluster_3' }), [`${field}: "Cluster_3" is not a cluster or region name (a DNS-1123 label)`]);
    assert.deepEqual(await problems({ 'strait.dev/failover': 'cluster2,cluster3,cluster2' }), [`${field}: "cluster2" is named twice: each may appear once`]);
  });

  it('refuses a failover entry that is neither a cluster nor a region of the mesh', () => {
    const service = (failover: string): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'userlist-svc', annotations: { 'strait.dev/failover': failover } } });
    const mesh = { clusters: ['cluster1', 'cluster2'], regions: ['eu-west'] };
    assert.deepEqual(serviceMeshProblems(service('cluster2,eu-west,cluster1'), mesh), []);
    assert.deepEqual(serviceMeshProblems(service('cluster2,cluster9'), mesh), [
      { path: ['metadata', 'annotations', 'strait.dev/failover'], reason: 'cluster9 is neither a cluster nor a region of this mesh (clusters: cluster1, cluster2; regions: eu-west)' },
    ]);
    assert.equal(serviceMeshProblems(service('us-east'), { clusters: ['cluster1'], regions: [] })[0]?.reason, 'us-east is neither a cluster nor a region of this mesh (clusters: cluster1; regions: none)');
    // Malformed lists are validation's to report; other kinds are not checked.
    assert.deepEqual(serviceMeshProblems(service('cluster9,,'), mesh), []);
    assert.deepEqual(serviceMeshProblems({ ...service('cluster9'), kind: 'Deployment' }, mesh), []);
  });
});
