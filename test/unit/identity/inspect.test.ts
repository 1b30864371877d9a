import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CertificateAuthority } from '../../../src/identity/ca.js';
import { formatInspectReport, inspectPem } from '../../../src/identity/inspect.js';
import { DAY, issueMaterial, meshPki } from './fixtures.js';

describe('inspect', () => {
  it('reports a workload chain: SPIFFE URI SAN, 24 h lifetime, states and links', async () => {
    const { issuers } = await meshPki(['cluster1']);
    const ca = new CertificateAuthority({ issuer: issuers.cluster1!, trustDomain: 'cluster.local', now: () => new Date(Date.now() - 2 * DAY) });
    const material = await issueMaterial(ca, { namespace: 'sample', serviceAccount: 'sleep' });
    const report = await inspectPem(material.certChainPem + material.trustBundlePem, 'chain.pem');
    assert.ok('certificates' in report);
    const [leaf, issuer, root] = report.certificates;
    assert.deepEqual(leaf!.sans, ['URI:spiffe://cluster.local/ns/sample/sa/sleep']);
    assert.equal(leaf!.subject, '');
    assert.equal(leaf!.lifetime, '1d1m');
    assert.equal(leaf!.state, 'expired');
    assert.equal(leaf!.ca, false);
    assert.equal(leaf!.chain, 'signed by #2');
    assert.equal(issuer!.chain, 'signed by #3');
    assert.equal(issuer!.pathLength, 0);
    assert.equal(root!.chain, 'self-signed');
    const text = formatInspectReport(report);
    assert.match(text, /chain\.pem: 3 certificates/);
    assert.match(text, /Subject:\s+\(empty\)\n\s+Issuer:\s+O=cluster\.local, CN=Strait issuer for cluster1\n\s+SANs:\s+URI:spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/);
    assert.match(text, /\(1d1m; expired\)/);
  });

  it('reports the type of a private key, and refuses other PEM', async () => {
    const { issuers } = await meshPki(['cluster1']);
    const material = await issueMaterial(new CertificateAuthority({ issuer: issuers.cluster1!, trustDomain: 'cluster.local' }), { namespace: 'a', serviceAccount: 'b' });
    const key = await inspectPem(material.keyPem, 'w.key');
    assert.ok('privateKey' in key);
    assert.equal(key.privateKey.key, 'ECDSA P-256');
    await assert.rejects(inspectPem('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'p.pem'), /p\.pem holds a PUBLIC KEY; inspect reads certificates and private keys/);
  });
});
