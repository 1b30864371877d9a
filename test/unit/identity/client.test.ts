// The workload identity client against a local CA: first certificate, renewal with a new key,
// back-off while the CA fails, its status at each stage, and refusal of a CA's wrong answers.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { CertificateAuthority, localCertifier } from '../../../src/identity/ca.js';
import { WorkloadIdentity, type Certifier } from '../../../src/identity/client.js';
import { parseCertificates } from '../../../src/identity/pem.js';
import { createTrustAnchor, uriSans, type Issuer } from '../../../src/identity/pki.js';
import { derOf, ECDSA_P256, generateKeyPair, x509 } from '../../../src/identity/x509.js';
import { waitFor } from '../../support/cli.js';
import { DAY, meshPki } from './fixtures.js';

const workload = { namespace: 'sample', serviceAccount: 'helloworld' };
const ID = 'spiffe://cluster.local/ns/sample/sa/helloworld';
const fastRetry = { initialMs: 5, maxMs: 20 };

describe('workload identity client', () => {
  let issuer: Issuer;
  let otherMesh: Issuer;

  before(async () => {
    issuer = (await meshPki(['cluster1'])).issuers.cluster1!;
    otherMesh = (await meshPki(['elsewhere'])).issuers.elsewhere!;
  });

  it('is pending, then ready with a certificate for its own in-memory key', async () => {
    const identity = new WorkloadIdentity({ certifier: localCertifier(new CertificateAuthority({ issuer, trustDomain: 'cluster.local' }), workload) });
    assert.equal(identity.status(), 'pending');
    assert.throws(() => identity.secureContext(), /no workload certificate yet \(status: pending\)/);
    await identity.start();
    try {
      assert.equal(identity.status(), 'ready');
      const m = identity.material();
      assert.equal(m.spiffeId, ID);
      assert.match(m.keyPem, /^-----BEGIN PRIVATE KEY-----/);
      const chain = parseCertificates(m.certChainPem, 'chain');
      assert.equal(chain.length, 2);
      assert.deepEqual(uriSans(chain[0]!), [ID]);
      assert.equal(parseCertificates(m.trustBundlePem, 'bundle').length, 1);
      assert.ok(identity.secureContext());
    } finally {
      identity.stop();
    }
  });

  it('renews before expiry with a new key and tells its listeners', async () => {
    const ca = new CertificateAuthority({ issuer, trustDomain: 'cluster.local', leafLifetimeMs: 1500, clockSkewMs: 0 });
    const identity = new WorkloadIdentity({ certifier: localCertifier(ca, workload) });
    let rotations = 0;
    identity.onRotate(() => rotations++);
    await identity.start();
    try {
      const first = identity.material();
      await waitFor('a renewal', () => rotations >= 2, 10_000, 20);
      const second = identity.material();
      assert.notEqual(second.keyPem, first.keyPem, 'a fresh key for each certificate');
      assert.notEqual(second.certChainPem, first.certChainPem);
      assert.equal(second.spiffeId, ID);
    } finally {
      identity.stop();
    }
  });

  it('retries while the CA fails, saying why, and recovers', async () => {
    const ca = localCertifier(new CertificateAuthority({ issuer, trustDomain: 'cluster.local' }), workload);
    let calls = 0;
    const flaky: Certifier = {
      certify: (csr) => (++calls <= 3 ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:4001')) : ca.certify(csr)),
    };
    const identity = new WorkloadIdentity({ certifier: flaky, backoff: fastRetry });
    const statuses = new Set<string>();
    const watch = setInterval(() => statuses.add(identity.status()), 1);
    try {
      await identity.start();
      clearInterval(watch);
      assert.ok(statuses.has('failed: connect ECONNREFUSED 127.0.0.1:4001'), [...statuses].join(' | '));
      assert.equal(calls, 4);
      assert.equal(identity.status(), 'ready');
      assert.equal(identity.error, undefined);
    } finally {
      clearInterval(watch);
      identity.stop();
    }
  });

  it('is expiring while renewal fails, and failed once the certificate has expired', async () => {
    const ca = localCertifier(new CertificateAuthority({ issuer, trustDomain: 'cluster.local', leafLifetimeMs: 1200, clockSkewMs: 0 }), workload);
    let calls = 0;
    const onceOnly: Certifier = { certify: (csr) => (++calls === 1 ? ca.certify(csr) : Promise.reject(new Error('the CA is away'))) };
    const identity = new WorkloadIdentity({ certifier: onceOnly, renewFraction: 0.1, backoff: fastRetry });
    await identity.start();
    try {
      await waitFor('a failed renewal', () => identity.error !== undefined, 5_000, 5);
      assert.equal(identity.error, 'the CA is away');
      assert.equal(identity.status(), 'expiring', 'the certificate is still good while renewal fails');
      await waitFor('failed', () => identity.status().startsWith('failed: '), 5_000, 20);
      assert.match(identity.status(), /^failed: the certificate expired at \d{4}-.*; last renewal error: the CA is away$/);
    } finally {
      identity.stop();
    }
  });

  it("refuses a CA's answer for another key, another identity, or outside the trust bundle", async () => {
    const ca = new CertificateAuthority({ issuer, trustDomain: 'cluster.local' });
    const cases: [string, Certifier, RegExp, string?][] = [
      [
        'another key',
        { certify: async () => localCertifier(ca, workload).certify(await freshCsr()) },
        /the CA sent a certificate for another key/,
      ],
      ['another identity', localCertifier(ca, { namespace: 'sample', serviceAccount: 'intruder' }), /certificate for spiffe:\/\/cluster\.local\/ns\/sample\/sa\/intruder, expected/, ID],
      [
        'a chain to a foreign root',
        {
          certify: async (csr) => {
            const answer = await localCertifier(ca, workload).certify(csr);
            return { ...answer, trustBundle: otherMesh.trustBundle.map(derOf) };
          },
        },
        /does not chain to the trust anchor 'O=cluster\.local, CN=Strait trust anchor'/,
      ],
      ['no certificate', { certify: () => Promise.resolve({ certChain: [], trustBundle: [] }) }, /the CA sent no certificate/],
    ];
    for (const [what, certifier, message, expectedSpiffeId] of cases) {
      const identity = new WorkloadIdentity({ certifier, backoff: { initialMs: 1000, maxMs: 1000 }, ...(expectedSpiffeId ? { expectedSpiffeId } : {}) });
      void identity.start().catch(() => {});
      try {
        await waitFor(`a refusal of ${what}`, () => identity.status().startsWith('failed: '), 5_000, 5);
        assert.match(identity.status(), message, what);
        assert.throws(() => identity.material(), /no workload certificate yet/);
      } finally {
        identity.stop();
      }
    }
  });

  it('ignores an expired anchor left in a rotated bundle', async () => {
    const old = await createTrustAnchor({ trustDomain: 'cluster.local', now: new Date(Date.now() - 30 * DAY), lifetimeMs: DAY });
    const ca = localCertifier(new CertificateAuthority({ issuer, trustDomain: 'cluster.local' }), workload);
    const identity = new WorkloadIdentity({
      certifier: { certify: async (csr) => ({ ...(await ca.certify(csr)), trustBundle: [derOf(old.certificate), ...issuer.trustBundle.map(derOf)] }) },
    });
    await identity.start();
    identity.stop();
    assert.equal(parseCertificates(identity.material().trustBundlePem, 'bundle').length, 1);
  });

  it('rejects start() when stopped before the first certificate', async () => {
    const identity = new WorkloadIdentity({ certifier: { certify: () => Promise.reject(new Error('down')) }, backoff: fastRetry });
    const started = identity.start();
    identity.stop();
    await assert.rejects(started, /stopped before it got a certificate/);
  });
});

async function freshCsr(): Promise<Uint8Array> {
  const req = await x509.Pkcs10CertificateRequestGenerator.create({ keys: await generateKeyPair(), signingAlgorithm: ECDSA_P256 });
  return new Uint8Array(req.rawData);
}
