// The Kubernetes credential verifier: a TokenReview's answer becomes a workload identity only for a
// pod-bound service-account token of Strait's audience, presented from that pod.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CredentialRejected } from '../../../src/identity/credentials.js';
import { TokenReviewVerifier, type BoundPod, type TokenReviewStatus } from '../../../src/control/token-review.js';

const good: TokenReviewStatus = {
  authenticated: true,
  audiences: ['identity.strait.dev'],
  user: {
    username: 'system:serviceaccount:sample:helloworld',
    extra: { 'authentication.kubernetes.io/pod-name': ['helloworld-v1-abc'], 'authentication.kubernetes.io/pod-uid': ['uid-1'] },
  },
};

function verifier(status: TokenReviewStatus, pods: Record<string, BoundPod> = {}, seen: string[][] = []) {
  return new TokenReviewVerifier({
    review: (_token, audiences) => {
      seen.push(audiences);
      return Promise.resolve(status);
    },
    cluster: 'c1',
    pod: (ns, name) => Promise.resolve(pods[`${ns}/${name}`]),
  });
}

const rejected = (reason: string, message: RegExp) => (err: unknown) => err instanceof CredentialRejected && err.reason === reason && message.test(err.message);

describe('TokenReview verifier', () => {
  it("derives the identity from the token's service account and bound pod, asking for Strait's audience", async () => {
    const seen: string[][] = [];
    const v = verifier(good, { 'sample/helloworld-v1-abc': { uid: 'uid-1', podIP: '127.20.0.9' } }, seen);
    assert.deepEqual(await v.verify('tok', '127.20.0.9'), { namespace: 'sample', serviceAccount: 'helloworld', cluster: 'c1', pod: 'helloworld-v1-abc' });
    assert.deepEqual(await v.verify('tok', '::ffff:127.20.0.9'), { namespace: 'sample', serviceAccount: 'helloworld', cluster: 'c1', pod: 'helloworld-v1-abc' });
    assert.deepEqual(seen[0], ['identity.strait.dev']);
  });

  it('rejects a token of another audience', async () => {
    const v = verifier({ authenticated: false, error: '[invalid bearer token, token audiences ["api"] is invalid for the target audiences ["identity.strait.dev"]]' });
    await assert.rejects(v.verify('tok'), rejected('wrong-audience', /invalid for the target audiences/));
    // An API server that answered for other audiences than asked.
    await assert.rejects(verifier({ ...good, audiences: ['api'] }).verify('tok'), rejected('wrong-audience', /not for identity.strait.dev/));
  });

  it('rejects a token another pod presents, one of a pod that is gone, and one bound to no pod', async () => {
    const pods = { 'sample/helloworld-v1-abc': { uid: 'uid-1', podIP: '127.20.0.9' } };
    await assert.rejects(verifier(good, pods).verify('tok', '127.20.0.10'), rejected('invalid-claims', /bound to pod sample\/helloworld-v1-abc \(127.20.0.9\) but was presented from 127.20.0.10/));
    await assert.rejects(verifier(good, {}).verify('tok', '127.20.0.9'), rejected('invalid-claims', /no longer exists/));
    await assert.rejects(verifier(good, { 'sample/helloworld-v1-abc': { uid: 'uid-2' } }).verify('tok'), rejected('invalid-claims', /no longer exists/));
    const unbound = { ...good, user: { username: 'system:serviceaccount:sample:helloworld' } };
    await assert.rejects(verifier(unbound).verify('tok'), rejected('invalid-claims', /not bound to a pod/));
  });

  it('rejects users that are not service accounts, tokens the API server refuses, and empty tokens', async () => {
    await assert.rejects(verifier({ authenticated: true, user: { username: 'admin' } }).verify('tok'), rejected('invalid-claims', /not a service account/));
    await assert.rejects(verifier({ authenticated: false, error: 'token has been invalidated' }).verify('tok'), rejected('bad-signature', /invalidated/));
    await assert.rejects(verifier(good).verify(' '), rejected('malformed', /empty/));
  });
});
