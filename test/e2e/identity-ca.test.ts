// The identity service through a real Connect HTTP/2 TLS server: workloads get certificates for
// the identity their token grants; every bad credential or CSR is refused and nothing is issued.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { createServer } from 'node:net';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { Identity } from '../../src/api/gen/strait/identity/v1/identity_pb.js';
import { controlPlaneSpiffeId } from '../../src/identity/spiffe.js';
import { caTransport, connectCertifier, fetchTrustBundle, WorkloadIdentity } from '../../src/identity/client.js';
import { generateTokenKey, mintBootstrapToken } from '../../src/identity/credentials.js';
import { certificatesPem } from '../../src/identity/pem.js';
import { uriSans, type Issuer } from '../../src/identity/pki.js';
import { ECDSA_P256, generateKeyPair, x509 } from '../../src/identity/x509.js';
import { waitFor } from '../support/cli.js';
import { meshPki, startControlPlane, type RunningControlPlane } from '../unit/identity/fixtures.js';

const sample = { namespace: 'sample', serviceAccount: 'helloworld' };
const ID = 'spiffe://cluster.local/ns/sample/sa/helloworld';

async function csr(sans?: x509.JsonGeneralNames): Promise<Uint8Array> {
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: await generateKeyPair(),
    signingAlgorithm: ECDSA_P256,
    ...(sans ? { extensions: [new x509.SubjectAlternativeNameExtension(sans)] } : {}),
  });
  return new Uint8Array(req.rawData);
}

function connectError(code: Code, message: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${err.name}: ${err.message}`);
    assert.equal(Code[err.code], Code[code], err.message);
    assert.match(err.rawMessage, message);
    return true;
  };
}

describe('identity service over Connect HTTP/2 TLS', () => {
  let issuer: Issuer;
  let foreign: Issuer;
  let cp: RunningControlPlane;
  let client: Client<typeof Identity>;

  before(async () => {
    issuer = (await meshPki(['cluster1'])).issuers.cluster1!;
    foreign = (await meshPki(['elsewhere'])).issuers.elsewhere!;
    cp = await startControlPlane({ issuer, cluster: 'cluster1' });
    client = createClient(
      Identity,
      caTransport({ baseUrl: cp.baseUrl, trustBundlePem: certificatesPem(issuer.trustBundle), serverIdentity: controlPlaneSpiffeId('cluster.local') }),
    );
  });
  after(() => cp.close());

  it('certifies a workload for the identity its token grants, with the chain and the trust bundle', async () => {
    const identity = cp.workload(sample);
    await identity.start();
    try {
      assert.equal(identity.status(), 'ready');
      assert.equal(identity.material().spiffeId, ID);
      const issued = cp.events.find((e) => e.outcome === 'issued' && e.spiffeId === ID);
      assert.ok(issued, JSON.stringify(cp.events));
    } finally {
      identity.stop();
    }
    const res = await client.certify({ token: cp.token({ ...sample, pod: 'helloworld-v1-abc' }), csr: await csr() });
    assert.equal(res.spiffeId, ID);
    assert.equal(res.certChain.length, 2);
    assert.deepEqual(uriSans(new x509.X509Certificate(res.certChain[0]!)), [ID]);
    assert.equal(res.trustBundle.length, 1);
    assert.ok(res.notAfter);
  });

  it('serves the trust bundle to any valid credential, and only to one', async () => {
    const transport = caTransport({ baseUrl: cp.baseUrl, trustBundlePem: certificatesPem(issuer.trustBundle), serverIdentity: controlPlaneSpiffeId('cluster.local') });
    assert.equal(await fetchTrustBundle(transport, () => cp.token(sample)), certificatesPem(issuer.trustBundle));
    const res = await client.trustBundle({ token: cp.token({ namespace: 'default', serviceAccount: 'default' }) });
    assert.equal(res.trustDomain, 'cluster.local');
    await assert.rejects(client.trustBundle({ token: 'nonsense' }), connectError(Code.Unauthenticated, /credential rejected \(malformed\)/));
  });

  const badTokens: [string, () => string, RegExp][] = [
    ['a forged token (another key)', () => mintBootstrapToken(generateTokenKey(), { cluster: 'cluster1', ...sample }), /\(bad-signature\)/],
    ['an expired token', () => mintBootstrapToken(cp.tokenKey, { cluster: 'cluster1', ...sample }, { now: new Date(Date.now() - 7200_000), lifetimeMs: 3600_000 }), /\(expired\): the token expired at/],
    ['a wrong-audience token', () => mintBootstrapToken(cp.tokenKey, { cluster: 'cluster1', ...sample }, { audience: 'kubernetes' }), /\(wrong-audience\)/],
    ["another cluster's token", () => mintBootstrapToken(cp.tokenKey, { cluster: 'cluster2', ...sample }), /\(wrong-cluster\)/],
    ['no token', () => '', /\(malformed\)/],
  ];
  for (const [what, token, reason] of badTokens) {
    it(`refuses ${what} and issues nothing`, async () => {
      const issuedBefore = cp.events.filter((e) => e.outcome === 'issued').length;
      await assert.rejects(client.certify({ token: token(), csr: await csr() }), connectError(Code.Unauthenticated, reason));
      assert.equal(cp.events.filter((e) => e.outcome === 'issued').length, issuedBefore);
      assert.equal(cp.events.at(-1)?.outcome, 'rejected');
    });
  }

  it('refuses a CSR asking for another identity than the token grants', async () => {
    const before = cp.events.length;
    await assert.rejects(
      client.certify({ token: cp.token(sample), csr: await csr([{ type: 'url', value: 'spiffe://cluster.local/ns/kube-system/sa/admin' }]) }),
      connectError(Code.PermissionDenied, /CSR rejected \(identity-mismatch\): the CSR asks for URI:spiffe:\/\/cluster\.local\/ns\/kube-system\/sa\/admin but the credential grants spiffe:\/\/cluster\.local\/ns\/sample\/sa\/helloworld/),
    );
    assert.deepEqual(cp.events.slice(before).map((e) => e.outcome), ['rejected']);
  });

  it("refuses to issue the control plane's own identity to a workload", async () => {
    await assert.rejects(
      client.certify({ token: cp.token({ namespace: 'strait-system', serviceAccount: 'control-plane' }), csr: await csr() }),
      connectError(Code.PermissionDenied, /spiffe:\/\/cluster\.local\/ns\/strait-system\/sa\/control-plane is the control plane's own identity/),
    );
  });

  it('refuses a CSR with a bad signature, and bytes that are no CSR', async () => {
    const tampered = await csr();
    tampered[tampered.length - 2]! ^= 0xff;
    await assert.rejects(client.certify({ token: cp.token(sample), csr: tampered }), connectError(Code.InvalidArgument, /\(bad-signature\)/));
    await assert.rejects(client.certify({ token: cp.token(sample), csr: new Uint8Array([1, 2, 3]) }), connectError(Code.InvalidArgument, /\(malformed\)/));
  });

  it("presents the control plane's identity, which the server checks are made against", async () => {
    const peer = await new Promise<{ uri: string[]; protocol: string | null | false }>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: cp.port, ca: certificatesPem(issuer.trustBundle), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
        resolve({ uri: [s.getPeerCertificate().subjectaltname ?? ''], protocol: s.alpnProtocol });
        s.end();
      });
      s.on('error', reject);
    });
    assert.deepEqual(peer, { uri: ['URI:spiffe://cluster.local/ns/strait-system/sa/control-plane'], protocol: 'h2' });
  });

  it('will not talk to a CA with an unexpected identity or under a foreign root', async () => {
    const cases: [string, string, string][] = [
      ['unexpected identity', certificatesPem(issuer.trustBundle), 'spiffe://cluster.local/ns/other/sa/ca'],
      ['foreign root', certificatesPem(foreign.trustBundle), controlPlaneSpiffeId('cluster.local')],
    ];
    for (const [what, trustBundlePem, serverIdentity] of cases) {
      const other = createClient(Identity, caTransport({ baseUrl: cp.baseUrl, trustBundlePem, serverIdentity }));
      await assert.rejects(other.certify({ token: cp.token(sample), csr: await csr() }), (err: Error) => {
        assert.match(err.message, what === 'foreign root' ? /unable to get local issuer certificate|self[- ]signed/i : /the peer is spiffe:\/\/cluster\.local\/ns\/strait-system\/sa\/control-plane, expected spiffe:\/\/cluster\.local\/ns\/other\/sa\/ca/);
        return true;
      });
    }
  });

  it('keeps retrying while the CA is away and gets its certificate when it comes back', async () => {
    const port = await freePort();
    const transport = caTransport({ baseUrl: `https://127.0.0.1:${port}`, trustBundlePem: certificatesPem(issuer.trustBundle), serverIdentity: controlPlaneSpiffeId('cluster.local') });
    let late: RunningControlPlane | undefined;
    const identity = new WorkloadIdentity({ certifier: connectCertifier(transport, () => late?.token(sample) ?? 'not yet'), backoff: { initialMs: 20, maxMs: 200 } });
    const started = identity.start();
    try {
      await waitFor('a failed attempt', () => identity.status().startsWith('failed: '), 10_000, 10);
      assert.match(identity.status(), /^failed: .*ECONNREFUSED/);
      late = await startControlPlane({ issuer, cluster: 'cluster1', port });
      await started;
      assert.equal(identity.status(), 'ready');
      assert.equal(identity.material().spiffeId, ID);
    } finally {
      identity.stop();
      await late?.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
