// Link credentials: minted and verified by one cluster, recorded in its store, refused when they
// are for another cluster, expired, tampered with, or revoked.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { generateTokenKey, mintBootstrapToken } from '../../../src/identity/credentials.js';
import {
  grantName,
  LinkCredentialRejected,
  LinkGrants,
  mintLinkCredential,
  verifyLinkCredential,
  type LinkCredentialRejection,
} from '../../../src/control/mesh-api/credentials.js';
import { LocalStore } from '../../../src/store/local.js';

const key = generateTokenKey();
const otherKey = generateTokenKey();
const claims = { cluster: 'cluster1', consumer: 'cluster2', id: 'abcdef0123456789' };

function rejected(reason: LinkCredentialRejection, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LinkCredentialRejected, String(err));
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** A token signed with `signingKey` over any payload, to build what a careless or hostile minter would. */
function signed(signingKey: Buffer, payload: object, header: object = { alg: 'HS256', typ: 'JWT' }): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', signingKey).update(input).digest('base64url')}`;
}

describe('link credential tokens', () => {
  it('a credential verifies for the cluster that minted it and says whom it is for', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const { token, expiresAt } = mintLinkCredential(key, claims, { lifetimeMs: 3_600_000, now });
    assert.equal(expiresAt.toISOString(), '2030-01-01T01:00:00.000Z');
    assert.deepEqual(verifyLinkCredential(key, token, { cluster: 'cluster1', now }), { ...claims, expiresAt });
  });

  it('a credential minted by another cluster is refused, naming both clusters', () => {
    const { token } = mintLinkCredential(otherKey, { ...claims, cluster: 'cluster3' });
    assert.throws(() => verifyLinkCredential(key, token, { cluster: 'cluster1' }), rejected('wrong-cluster', /minted by cluster cluster3 \(for cluster2\); this is cluster cluster1/));
  });

  it('a credential that claims this cluster but was signed by another key is refused', () => {
    const { token } = mintLinkCredential(otherKey, claims);
    assert.throws(() => verifyLinkCredential(key, token, { cluster: 'cluster1' }), rejected('bad-signature', /not minted by cluster cluster1/));
  });

  it('an altered credential is refused', () => {
    const { token } = mintLinkCredential(key, claims);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const changed = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { 'strait.dev': { consumer: string } };
    changed['strait.dev'].consumer = 'cluster9';
    const forged = `${header}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${signature}`;
    assert.throws(() => verifyLinkCredential(key, forged, { cluster: 'cluster1' }), rejected('bad-signature'));
  });

  it('an expired or not yet valid credential is refused, saying when', () => {
    const minted = new Date('2030-01-01T00:00:00Z');
    const { token } = mintLinkCredential(key, claims, { lifetimeMs: 60_000, now: minted });
    assert.throws(() => verifyLinkCredential(key, token, { cluster: 'cluster1', now: new Date('2030-01-01T00:01:00Z') }), rejected('expired', /expired at 2030-01-01T00:01:00.000Z/));
    assert.throws(() => verifyLinkCredential(key, token, { cluster: 'cluster1', now: new Date('2029-12-31T23:59:00Z') }), rejected('not-yet-valid'));
  });

  it('a credential for another audience, or of another kind, is refused', () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      iss: 'strait://cluster1/control-plane',
      sub: 'strait://cluster2/link',
      aud: ['identity.strait.dev'],
      jti: 'x',
      iat: now,
      nbf: now,
      exp: now + 60,
      'strait.dev': { cluster: 'cluster1', consumer: 'cluster2' },
    };
    assert.throws(() => verifyLinkCredential(key, signed(key, payload), { cluster: 'cluster1' }), rejected('wrong-audience', /not for the mesh API/));
    // A pod's bootstrap token, signed with the same kind of key, opens nothing here.
    const bootstrap = mintBootstrapToken(key, { cluster: 'cluster1', namespace: 'sample', serviceAccount: 'sleep' });
    assert.throws(() => verifyLinkCredential(key, bootstrap, { cluster: 'cluster1' }), rejected('malformed'));
  });

  it('garbage and unsigned tokens are refused', () => {
    for (const token of ['', 'not-a-jwt', 'a.b', 'a.b.c.d', '%%%.%%%.%%%']) assert.throws(() => verifyLinkCredential(key, token, { cluster: 'cluster1' }), rejected('malformed'));
    const { token } = mintLinkCredential(key, claims);
    const [, payload] = token.split('.') as [string, string];
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.AAAA`;
    assert.throws(() => verifyLinkCredential(key, unsigned, { cluster: 'cluster1' }), rejected('malformed', /algorithm is "none"/));
  });

  it('minting checks its inputs', () => {
    assert.throws(() => mintLinkCredential(Buffer.alloc(8), claims), /at least 32 bytes/);
    assert.throws(() => mintLinkCredential(key, { ...claims, consumer: 'Not_A_Name' }), /consumer "Not_A_Name" is not a valid cluster name/);
    assert.throws(() => mintLinkCredential(key, claims, { lifetimeMs: 0 }), /positive number of milliseconds/);
  });
});

describe('recorded credentials', () => {
  let store: LocalStore;
  let grants: LinkGrants;

  beforeEach(() => {
    store = LocalStore.memory();
    grants = new LinkGrants(store, key, 'cluster1');
  });
  afterEach(() => store.close());

  it('an issued credential is recorded (without the token) and authorizes its holder', async () => {
    const issued = await grants.issue({ consumer: 'cluster2', selector: { matchLabels: { app: 'web' } } });
    const record = await store.get({ kind: 'Secret', namespace: 'strait-system', name: grantName(issued.id) });
    assert.ok(record);
    assert.equal(JSON.stringify(record).includes(issued.token), false, 'the token itself is not kept');
    const { claims: verified, grant } = await grants.authorize(issued.token);
    assert.equal(verified.consumer, 'cluster2');
    assert.deepEqual(grant.selector, { matchLabels: { app: 'web' } });
    assert.equal(grant.expiresAt.toISOString(), issued.expiresAt.toISOString());
  });

  it('a revoked credential is refused however valid its signature; revoking is by consumer, one, or all but one', async () => {
    const first = await grants.issue({ consumer: 'cluster2' });
    const second = await grants.issue({ consumer: 'cluster2' });
    const other = await grants.issue({ consumer: 'cluster3' });
    assert.deepEqual(await grants.revoke({ consumer: 'cluster2', except: second.id }), [first.id]);
    await assert.rejects(grants.authorize(first.token), rejected('revoked', /was revoked \(strait unlink\)/));
    await grants.authorize(second.token);
    assert.deepEqual(await grants.revoke({ consumer: 'cluster2' }), [second.id]);
    await assert.rejects(grants.authorize(second.token), rejected('revoked'));
    await grants.authorize(other.token);
    assert.deepEqual(await grants.revoke({ consumer: 'cluster2' }), []);
    assert.deepEqual((await grants.records()).map((g) => g.consumer), ['cluster3']);
  });

  it('a cluster does not mint a credential for itself', async () => {
    await assert.rejects(grants.issue({ consumer: 'cluster1' }), /cannot mint a link credential for itself/);
  });
});
