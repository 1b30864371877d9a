import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BootstrapTokenVerifier,
  CredentialRejected,
  generateTokenKey,
  loadOrCreateTokenKey,
  mintBootstrapToken,
  type CredentialRejection,
} from '../../../src/identity/credentials.js';
import { tempDir } from './fixtures.js';

const key = generateTokenKey();
const pod = { cluster: 'cluster1', namespace: 'sample', serviceAccount: 'helloworld', pod: 'helloworld-v1-7d9f-abcde' };
const verifier = new BootstrapTokenVerifier({ key, cluster: 'cluster1' });

function rejectedFor(reason: CredentialRejection, message: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof CredentialRejected, `expected CredentialRejected, got ${err.name}: ${err.message}`);
    assert.equal(err.reason, reason);
    assert.match(err.message, message);
    return true;
  };
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Re-signs an edited payload with `signingKey`, as someone holding the key (or not) could. */
function resign(token: string, edit: (payload: Record<string, unknown>) => void, signingKey = key, header: unknown = { alg: 'HS256', typ: 'JWT' }): string {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  edit(payload);
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', signingKey).update(input).digest('base64url')}`;
}

describe('bootstrap tokens', () => {
  it('verify to the namespace, service account, cluster and pod they were minted for', async () => {
    assert.deepEqual(await verifier.verify(mintBootstrapToken(key, pod)), pod);
  });

  it('reject a token signed with another key (forged)', async () => {
    const forged = mintBootstrapToken(generateTokenKey(), pod);
    await assert.rejects(verifier.verify(forged), rejectedFor('bad-signature', /signature does not verify/));
  });

  it('reject a token whose claims were altered after signing', async () => {
    const [h, , s] = mintBootstrapToken(key, pod).split('.');
    const other = mintBootstrapToken(key, { ...pod, serviceAccount: 'admin' }).split('.')[1];
    await assert.rejects(verifier.verify(`${h}.${other}.${s}`), rejectedFor('bad-signature', /altered/));
  });

  it('reject alg "none" and other algorithms', async () => {
    const token = mintBootstrapToken(key, pod);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${token.split('.')[1]}.AAAA`;
    await assert.rejects(verifier.verify(none), rejectedFor('malformed', /algorithm is "none", not HS256/));
    await assert.rejects(verifier.verify(resign(token, () => {}, key, { alg: 'HS512' })), rejectedFor('malformed', /"HS512"/));
  });

  it('reject an expired token', async () => {
    const old = mintBootstrapToken(key, pod, { now: new Date(Date.now() - 3 * 3600_000), lifetimeMs: 3600_000 });
    await assert.rejects(verifier.verify(old), rejectedFor('expired', /expired at \d{4}-/));
  });

  it('reject a token that is not valid yet', async () => {
    const future = mintBootstrapToken(key, pod, { now: new Date(Date.now() + 3600_000) });
    await assert.rejects(verifier.verify(future), rejectedFor('not-yet-valid', /not valid before/));
  });

  it('reject a token for another audience', async () => {
    const token = mintBootstrapToken(key, pod, { audience: 'some-other-service' });
    await assert.rejects(verifier.verify(token), rejectedFor('wrong-audience', /\["some-other-service"\], not for identity\.strait\.dev/));
  });

  it('reject a token minted for another cluster, even under the same key', async () => {
    const token = mintBootstrapToken(key, { ...pod, cluster: 'cluster2' });
    await assert.rejects(verifier.verify(token), rejectedFor('wrong-cluster', /minted for cluster cluster2, not cluster1/));
  });

  it('reject tokens that are not JWTs or lack claims', async () => {
    await assert.rejects(verifier.verify(''), rejectedFor('malformed', /not a JWT/));
    await assert.rejects(verifier.verify('a.b'), rejectedFor('malformed', /not a JWT/));
    await assert.rejects(verifier.verify('a.b.c'), rejectedFor('malformed', /header is not a JSON object/));
    const token = mintBootstrapToken(key, pod);
    await assert.rejects(verifier.verify(resign(token, (p) => delete p.exp)), rejectedFor('invalid-claims', /lacks valid/));
    await assert.rejects(verifier.verify(resign(token, (p) => (p.sub = 'system:serviceaccount:kube-system:admin'))), rejectedFor('invalid-claims', /lacks valid/));
  });

  it('refuse keys shorter than 32 bytes and names Kubernetes would not allow', () => {
    assert.throws(() => mintBootstrapToken(Buffer.alloc(8), pod), /at least 32 bytes/);
    assert.throws(() => new BootstrapTokenVerifier({ key: Buffer.alloc(8), cluster: 'c' }), /at least 32 bytes/);
    assert.throws(() => mintBootstrapToken(key, { ...pod, namespace: 'Bad_NS' }), /namespace "Bad_NS" is not a valid DNS-1123 label/);
  });

  it('keep the signing key in a 0600 file, created once and reused', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'cluster1', 'token.key');
      const first = loadOrCreateTokenKey(file);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(loadOrCreateTokenKey(file), first);
      assert.equal(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64').length, 32);
    } finally {
      tmp.remove();
    }
  });
});
