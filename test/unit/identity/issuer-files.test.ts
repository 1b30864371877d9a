// Bring-your-own PKI: what step and Istio's Makefile produce is accepted; every broken issuer or
// anchor is rejected with a message naming the file and the reason.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMeshPkiFiles, ensureMeshPki, loadIssuerFiles, loadIstioCacerts, readTrustBundle } from '../../../src/identity/files.js';
import { certificatesPem, PkiError } from '../../../src/identity/pem.js';
import { createIssuer, createTrustAnchor, fingerprintSha256, publicKeyOf, describeKey } from '../../../src/identity/pki.js';
import { privateKeyPem } from '../../../src/identity/x509.js';
import { DAY, istioCacerts, openssl, stepIntermediateCa, stepRootCa, tempDir } from './fixtures.js';

function rejectsWith(message: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof PkiError, `expected a PkiError, got ${err.name}: ${err.message}`);
    assert.match(err.message, message);
    return true;
  };
}

describe('bring-your-own issuer material', () => {
  const tmp = tempDir();
  after(tmp.remove);
  const dir = tmp.dir;
  const root = stepRootCa(dir);
  const issuer = stepIntermediateCa(dir, root);
  const files = (over: Partial<{ trustAnchor: string; issuerCert: string; issuerKey: string }> = {}) => ({
    trustAnchor: root.cert,
    issuerCert: issuer.cert,
    issuerKey: issuer.key,
    ...over,
  });

  it("accepts what step's root-ca and intermediate-ca profiles produce", async () => {
    const loaded = await loadIssuerFiles(files());
    assert.equal(loaded.certificate.subject, 'CN=identity.linkerd.cluster.local');
    assert.equal(loaded.trustBundle.length, 1);
    assert.equal(loaded.intermediates.length, 0);
  });

  it('accepts a trust bundle of several anchors (rotation), the issuer chaining to any of them', async () => {
    const next = stepRootCa(dir, { name: 'next-root', cn: 'next root' });
    const underNext = stepIntermediateCa(dir, next, { name: 'next-issuer' });
    const bundle = join(dir, 'bundle.crt');
    writeFileSync(bundle, readFileSync(root.cert, 'utf8') + readFileSync(next.cert, 'utf8'));
    assert.equal((await loadIssuerFiles(files({ trustAnchor: bundle }))).trustBundle.length, 2);
    assert.equal((await loadIssuerFiles({ trustAnchor: bundle, issuerCert: underNext.cert, issuerKey: underNext.key })).trustBundle.length, 2);
    assert.equal((await readTrustBundle(bundle)).length, 2);
  });

  it("accepts Istio's cacerts (RSA root, ECDSA P-256 cluster CA, cert-chain.pem ending in the root)", async () => {
    const cluster = istioCacerts(join(dir, 'istio'));
    const loaded = await loadIstioCacerts(cluster);
    assert.equal(loaded.certificate.subject, 'O=Istio, CN=Intermediate CA, L=cluster1');
    assert.equal(describeKey(publicKeyOf(loaded.trustBundle[0]!)), 'RSA 2048');
    assert.equal(loaded.intermediates.length, 0, 'the root at the end of cert-chain.pem is an anchor, not an intermediate');
  });

  it("rejects Istio's stock cacerts, whose cluster CA key is RSA", async () => {
    const cluster = istioCacerts(join(dir, 'istio-rsa'), 'rsa-2048', 'rsa-2048');
    await assert.rejects(loadIstioCacerts(cluster), rejectsWith(/istio-rsa\/cluster1\/cert-chain\.pem .* is RSA 2048; Strait requires ECDSA P-256/));
  });

  it('rejects an issuer certificate that is not a CA', async () => {
    const leafLike = stepIntermediateCa(dir, root, { name: 'not-ca', extensions: 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature' });
    await assert.rejects(loadIssuerFiles(files({ issuerCert: leafLike.cert, issuerKey: leafLike.key })), rejectsWith(/not-ca\.crt .* is not a CA certificate .* cannot be an issuer/));
  });

  it('rejects an issuer whose keyUsage forbids signing certificates', async () => {
    const noSign = stepIntermediateCa(dir, root, { name: 'no-sign', extensions: 'basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, digitalSignature' });
    await assert.rejects(loadIssuerFiles(files({ issuerCert: noSign.cert, issuerKey: noSign.key })), rejectsWith(/no-sign\.crt .* has keyUsage without keyCertSign/));
  });

  it('rejects an expired issuer', async () => {
    const anchor = await createTrustAnchor({ trustDomain: 'cluster.local', now: new Date(Date.now() - 400 * DAY) });
    const old = await createIssuer(anchor, { trustDomain: 'cluster.local', cluster: 'c1', now: new Date(Date.now() - 400 * DAY), lifetimeMs: 30 * DAY });
    writeFileSync(join(dir, 'old-root.crt'), certificatesPem([anchor.certificate]));
    writeFileSync(join(dir, 'old-issuer.crt'), certificatesPem([old.certificate]));
    writeFileSync(join(dir, 'old-issuer.key'), await privateKeyPem(old.signingKey));
    await assert.rejects(
      loadIssuerFiles({ trustAnchor: join(dir, 'old-root.crt'), issuerCert: join(dir, 'old-issuer.crt'), issuerKey: join(dir, 'old-issuer.key') }),
      rejectsWith(/old-issuer\.crt .* expired on \d{4}-/),
    );
  });

  it('rejects an expired trust anchor', async () => {
    const anchor = await createTrustAnchor({ trustDomain: 'cluster.local', now: new Date(Date.now() - 40 * DAY), lifetimeMs: 10 * DAY });
    writeFileSync(join(dir, 'expired-root.crt'), certificatesPem([anchor.certificate]));
    await assert.rejects(loadIssuerFiles(files({ trustAnchor: join(dir, 'expired-root.crt') })), rejectsWith(/expired-root\.crt .* expired on/));
  });

  it('rejects an issuer that does not chain to the anchor', async () => {
    const other = stepRootCa(dir, { name: 'other-root', cn: 'someone else' });
    const foreign = stepIntermediateCa(dir, other, { name: 'foreign-issuer' });
    await assert.rejects(
      loadIssuerFiles(files({ issuerCert: foreign.cert, issuerKey: foreign.key })),
      rejectsWith(/foreign-issuer\.crt .* does not chain to the trust anchor 'CN=root\.linkerd\.cluster\.local': it was issued by 'CN=someone else'/),
    );
  });

  it('rejects an issuer key that does not match the certificate', async () => {
    const another = stepIntermediateCa(dir, root, { name: 'another' });
    await assert.rejects(loadIssuerFiles(files({ issuerKey: another.key })), rejectsWith(/the issuer key .*another\.key does not match the issuer certificate .*issuer\.crt/));
  });

  it('rejects an RSA or P-384 issuer, where ECDSA P-256 is required', async () => {
    const rsa = stepIntermediateCa(dir, root, { name: 'rsa-issuer', key: 'rsa-2048' });
    await assert.rejects(loadIssuerFiles(files({ issuerCert: rsa.cert, issuerKey: rsa.key })), rejectsWith(/rsa-issuer\.crt .* is RSA 2048; Strait requires ECDSA P-256/));
    const p384 = stepIntermediateCa(dir, root, { name: 'p384-issuer', key: 'ec-p384' });
    await assert.rejects(loadIssuerFiles(files({ issuerCert: p384.cert, issuerKey: p384.key })), rejectsWith(/p384-issuer\.crt .* is ECDSA P-384; Strait requires ECDSA P-256/));
  });

  it('rejects a weak RSA 1024 trust anchor', async () => {
    const weak = stepRootCa(dir, { name: 'weak-root', key: 'rsa-1024' });
    const under = stepIntermediateCa(dir, weak, { name: 'under-weak' });
    await assert.rejects(
      loadIssuerFiles({ trustAnchor: weak.cert, issuerCert: under.cert, issuerKey: under.key }),
      rejectsWith(/trust anchor .*weak-root\.crt .* is RSA 1024, which is too weak/),
    );
  });

  it('rejects an anchor that is not a root (an intermediate given as the trust anchor)', async () => {
    await assert.rejects(loadIssuerFiles(files({ trustAnchor: issuer.cert })), rejectsWith(/issuer\.crt .* is not self-signed .* must be a root certificate/));
  });

  it("rejects a chain longer than the root's path length allows", async () => {
    const middle = stepIntermediateCa(dir, root, { name: 'middle', extensions: 'basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign' });
    const deep = stepIntermediateCa(dir, middle, { name: 'deep' });
    const chain = join(dir, 'deep-chain.crt');
    writeFileSync(chain, readFileSync(deep.cert, 'utf8') + readFileSync(middle.cert, 'utf8'));
    await assert.rejects(loadIssuerFiles(files({ issuerCert: chain, issuerKey: deep.key })), rejectsWith(/ca\.crt .* allows 1 CA certificate\(s\) below it \(pathlen 1\) but the chain has 2/));
  });

  it('rejects truncated PEM or PEM of something else, naming the file', async () => {
    const cut = join(dir, 'cut.crt');
    writeFileSync(cut, readFileSync(issuer.cert, 'utf8').slice(0, 200));
    await assert.rejects(loadIssuerFiles(files({ issuerCert: cut })), rejectsWith(/cut\.crt: truncated PEM/));
    await assert.rejects(loadIssuerFiles(files({ issuerKey: issuer.cert })), rejectsWith(/issuer\.crt holds a CERTIFICATE, not a private key/));
    await assert.rejects(loadIssuerFiles(files({ trustAnchor: root.key })), rejectsWith(/ca\.key holds an EC PRIVATE KEY, not a CERTIFICATE/));
  });
});

describe('mesh PKI files', () => {
  const tmp = tempDir();
  after(tmp.remove);

  it('writes a trust anchor and an issuer per cluster, keys 0600, that openssl verifies', async () => {
    const out = join(tmp.dir, 'per-cluster');
    const written = await createMeshPkiFiles(out, { trustDomain: 'cluster.local', clusters: ['cluster1', 'cluster2'], sharedIssuer: false });
    assert.deepEqual(
      written.map((f) => f.slice(out.length + 1)).sort(),
      ['issuer-cluster1.crt', 'issuer-cluster1.key', 'issuer-cluster2.crt', 'issuer-cluster2.key', 'trust-anchor.crt', 'trust-anchor.key'],
    );
    for (const f of written.filter((f) => f.endsWith('.key'))) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    for (const c of ['cluster1', 'cluster2']) {
      assert.match(openssl(out, ['verify', '-CAfile', 'trust-anchor.crt', `issuer-${c}.crt`]), /OK/);
      assert.match(openssl(out, ['x509', '-in', `issuer-${c}.crt`, '-noout', '-subject']), new RegExp(`Strait issuer for ${c}`));
      await loadIssuerFiles({ trustAnchor: join(out, 'trust-anchor.crt'), issuerCert: join(out, `issuer-${c}.crt`), issuerKey: join(out, `issuer-${c}.key`) });
    }
  });

  it('writes one issuer for all with sharedIssuer', async () => {
    const out = join(tmp.dir, 'shared');
    const written = await createMeshPkiFiles(out, { trustDomain: 'example.org', clusters: ['a', 'b'], sharedIssuer: true });
    assert.deepEqual(written.map((f) => f.slice(out.length + 1)).sort(), ['issuer.crt', 'issuer.key', 'trust-anchor.crt', 'trust-anchor.key']);
    assert.match(openssl(out, ['x509', '-in', 'issuer.crt', '-noout', '-subject']), /O = example\.org, CN = Strait shared issuer/);
  });

  it('refuses to overwrite existing material and writes nothing', async () => {
    const out = join(tmp.dir, 'per-cluster');
    const before = readFileSync(join(out, 'trust-anchor.crt'), 'utf8');
    await assert.rejects(
      createMeshPkiFiles(out, { trustDomain: 'cluster.local', clusters: ['cluster3', 'cluster1'], sharedIssuer: false }),
      rejectsWith(/trust-anchor\.crt, .*issuer-cluster1\.key already exist; refusing to overwrite/),
    );
    assert.equal(readFileSync(join(out, 'trust-anchor.crt'), 'utf8'), before);
    assert.throws(() => statSync(join(out, 'issuer-cluster3.crt')));
  });

  it('keeps a state directory PKI: made once, reused, with issuers added for new clusters', async () => {
    const state = join(tmp.dir, 'state');
    const first = await ensureMeshPki(state, { trustDomain: 'cluster.local', clusters: ['cluster1'] });
    const again = await ensureMeshPki(state, { trustDomain: 'cluster.local', clusters: ['cluster1', 'cluster2'] });
    const fp = (i: { certificate: { rawData: ArrayBuffer } }) => fingerprintSha256(i.certificate.rawData);
    assert.equal(fp(again.get('cluster1')!), fp(first.get('cluster1')!));
    assert.equal(fingerprintSha256(again.get('cluster2')!.trustBundle[0]!.rawData), fingerprintSha256(first.get('cluster1')!.trustBundle[0]!.rawData));
    assert.equal(statSync(join(state, 'issuer-cluster2.key')).mode & 0o777, 0o600);
  });
});
