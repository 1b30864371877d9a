// CSR signing: the identity comes from the credential, never from the CSR; every bad CSR is
// refused with its reason; what is issued passes `openssl verify` and reads right in `openssl x509 -text`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, CsrRejected, IssuerUnusable, type CsrRejection } from '../../../src/identity/ca.js';
import { certificatesPem } from '../../../src/identity/pem.js';
import { createIssuer, issuerOf, uriSans, type Issuer, type SigningCa } from '../../../src/identity/pki.js';
import { ECDSA_P256, generateKeyPair, x509 } from '../../../src/identity/x509.js';
import { DAY, makeKey, meshPki, openssl, tempDir } from './fixtures.js';

const workload = { namespace: 'sample', serviceAccount: 'helloworld' };
const ID = 'spiffe://cluster.local/ns/sample/sa/helloworld';

async function csr(params: { name?: x509.JsonName; sans?: x509.JsonGeneralNames } = {}): Promise<Uint8Array> {
  const keys = await generateKeyPair();
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ECDSA_P256,
    ...(params.name ? { name: params.name } : {}),
    ...(params.sans ? { extensions: [new x509.SubjectAlternativeNameExtension(params.sans)] } : {}),
  });
  return new Uint8Array(req.rawData);
}

function rejectedFor(reason: CsrRejection, message: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof CsrRejected, `expected CsrRejected, got ${err.name}: ${err.message}`);
    assert.equal(err.reason, reason);
    assert.match(err.message, message);
    return true;
  };
}

describe('certificate authority', () => {
  let anchor: SigningCa;
  let issuer: Issuer;
  let ca: CertificateAuthority;
  const tmp = tempDir();

  before(async () => {
    const pki = await meshPki(['cluster1']);
    anchor = pki.anchor;
    issuer = pki.issuers.cluster1!;
    ca = new CertificateAuthority({ issuer, trustDomain: 'cluster.local' });
  });
  after(tmp.remove);

  it('issues a 24 h certificate whose only identity is the SPIFFE ID of the credential', async () => {
    const before = Date.now();
    const issued = await ca.certify(await csr(), workload);
    assert.equal(issued.spiffeId, ID);
    assert.deepEqual(uriSans(issued.certificate), [ID]);
    assert.equal(issued.certificate.subject, '');
    assert.equal(issued.chain.length, 2);
    assert.equal(issued.chain[1], issuer.certificate);
    const notAfter = issued.certificate.notAfter.getTime();
    assert.ok(notAfter >= Math.floor(before / 1000) * 1000 + DAY - 1000 && notAfter <= Date.now() + DAY, 'lives 24 h');
    assert.ok(issued.certificate.notBefore.getTime() <= before - 59_000, 'notBefore is backdated for clock skew');
  });

  it('passes openssl verify, and openssl x509 -text shows the URI SAN, usages and lifetime', async () => {
    const issued = await ca.certify(await csr(), workload);
    writeFileSync(join(tmp.dir, 'root.pem'), certificatesPem([anchor.certificate]));
    writeFileSync(join(tmp.dir, 'issuer.pem'), certificatesPem([issuer.certificate]));
    writeFileSync(join(tmp.dir, 'leaf.pem'), certificatesPem([issued.certificate]));
    assert.equal(openssl(tmp.dir, ['verify', '-CAfile', 'root.pem', '-untrusted', 'issuer.pem', 'leaf.pem']).trim(), 'leaf.pem: OK');
    // The same chain as a TLS peer would send it, checked for the TLS client and server purposes.
    for (const purpose of ['sslclient', 'sslserver']) {
      assert.match(openssl(tmp.dir, ['verify', '-purpose', purpose, '-CAfile', 'root.pem', '-untrusted', 'issuer.pem', 'leaf.pem']), /OK/);
    }
    const text = openssl(tmp.dir, ['x509', '-in', 'leaf.pem', '-noout', '-text']);
    assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/sample\/sa\/helloworld\n/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /ASN1 OID: prime256v1/);
    const dates = openssl(tmp.dir, ['x509', '-in', 'leaf.pem', '-noout', '-startdate', '-enddate']);
    const [, start, end] = /notBefore=(.+)\nnotAfter=(.+)/.exec(dates)!;
    assert.equal(Date.parse(end!) - Date.parse(start!), DAY + 60_000, '24 h plus the one-minute backdating');
  });

  it('accepts a CSR naming the same identity (CN or URI SAN)', async () => {
    const issued = await ca.certify(await csr({ name: [{ CN: [ID] }], sans: [{ type: 'url', value: ID }] }), workload);
    assert.deepEqual(uriSans(issued.certificate), [ID]);
  });

  it('rejects a CSR asking for a different identity than the credential grants', async () => {
    const other = 'spiffe://cluster.local/ns/kube-system/sa/admin';
    await assert.rejects(ca.certify(await csr({ sans: [{ type: 'url', value: other }] }), workload), rejectedFor('identity-mismatch', /asks for URI:spiffe:\/\/cluster\.local\/ns\/kube-system\/sa\/admin but the credential grants spiffe:\/\/cluster\.local\/ns\/sample\/sa\/helloworld/));
    await assert.rejects(ca.certify(await csr({ sans: [{ type: 'dns', value: 'api.example.com' }] }), workload), rejectedFor('identity-mismatch', /asks for DNS:api\.example\.com/));
    await assert.rejects(ca.certify(await csr({ name: [{ CN: [other] }] }), workload), rejectedFor('identity-mismatch', /asks for subject 'CN=spiffe:\/\/cluster\.local\/ns\/kube-system\/sa\/admin'/));
    await assert.rejects(ca.certify(await csr({ name: [{ O: ['cluster.local'] }] }), workload), rejectedFor('identity-mismatch', /subject 'O=cluster\.local'/));
  });

  it('rejects a CSR with a bad signature', async () => {
    const good = await csr();
    const bad = Uint8Array.from(good);
    bad[bad.length - 1]! ^= 0x01;
    await assert.rejects(ca.certify(bad, workload), rejectedFor('bad-signature', /signature does not verify/));
  });

  it('rejects an RSA or P-384 CSR, where ECDSA P-256 is required', async () => {
    makeKey(tmp.dir, 'rsa.key', 'rsa-2048');
    openssl(tmp.dir, ['req', '-new', '-key', 'rsa.key', '-subj', '/', '-outform', 'DER', '-out', 'rsa.csr']);
    await assert.rejects(ca.certify(readFileSync(join(tmp.dir, 'rsa.csr')), workload), rejectedFor('weak-key', /the CSR key is RSA 2048; Strait requires ECDSA P-256/));
    const p384 = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
    const req = await x509.Pkcs10CertificateRequestGenerator.create({ keys: p384, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } });
    await assert.rejects(ca.certify(new Uint8Array(req.rawData), workload), rejectedFor('weak-key', /ECDSA P-384/));
  });

  it('rejects bytes that are not a CSR', async () => {
    await assert.rejects(ca.certify(Buffer.from('hello'), workload), rejectedFor('malformed', /not a DER-encoded PKCS#10/));
    await assert.rejects(ca.certify(new Uint8Array(issuer.certificate.rawData), workload), rejectedFor('malformed', /not a DER-encoded PKCS#10/));
  });

  it('never issues past its issuer, and refuses once the issuer has expired', async () => {
    const now = Date.now();
    const shortLived = issuerOf(await createIssuer(anchor, { trustDomain: 'cluster.local', cluster: 'c', lifetimeMs: 3600_000 }), [anchor.certificate]);
    const clamped = await new CertificateAuthority({ issuer: shortLived, trustDomain: 'cluster.local' }).certify(await csr(), workload);
    assert.equal(clamped.certificate.notAfter.getTime(), shortLived.certificate.notAfter.getTime());
    const later = new CertificateAuthority({ issuer: shortLived, trustDomain: 'cluster.local', now: () => new Date(now + 2 * 3600_000) });
    await assert.rejects(later.certify(await csr(), workload), (err: Error) => err instanceof IssuerUnusable && /expired on/.test(err.message));
  });
});
