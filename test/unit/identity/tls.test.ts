import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { peerIdentityProblem, uriSansOf } from '../../../src/identity/tls.js';

const ID = 'spiffe://cluster.local/ns/sample/sa/helloworld';

describe('peer identity checks', () => {
  it("read URI SANs from Node's subjectaltname text, including JSON-quoted values", () => {
    assert.deepEqual(uriSansOf({ subjectaltname: `URI:${ID}` }), [ID]);
    assert.deepEqual(uriSansOf({ subjectaltname: `DNS:a.example, URI:${ID}, IP Address:10.0.0.1` }), [ID]);
    assert.deepEqual(uriSansOf({ subjectaltname: 'URI:"spiffe://td/ns/a, URI:spiffe://td/ns/b"' }), ['spiffe://td/ns/a, URI:spiffe://td/ns/b']);
    assert.deepEqual(uriSansOf({}), []);
  });

  it('accept the expected identity, by value, list or predicate', () => {
    const cert = { subjectaltname: `URI:${ID}` };
    assert.equal(peerIdentityProblem(cert, ID), undefined);
    assert.equal(peerIdentityProblem(cert, ['spiffe://x/ns/a/sa/b', ID]), undefined);
    assert.equal(peerIdentityProblem(cert, (id) => id.startsWith('spiffe://cluster.local/ns/sample/')), undefined);
  });

  it('reject another identity, none, or several', () => {
    assert.equal(peerIdentityProblem({ subjectaltname: `URI:${ID}` }, 'spiffe://cluster.local/ns/sample/sa/other'), `the peer is ${ID}, expected spiffe://cluster.local/ns/sample/sa/other`);
    assert.match(peerIdentityProblem({ subjectaltname: 'DNS:helloworld' }, ID)!, /no SPIFFE ID/);
    assert.match(peerIdentityProblem({ subjectaltname: `URI:${ID}, URI:${ID}x` }, `${ID}x`)!, /not exactly one SPIFFE ID/);
    assert.match(peerIdentityProblem({ subjectaltname: 'URI:https://example.com/' }, ID)!, /not exactly one SPIFFE ID/);
    // A quoted value that merely contains the expected text is not the expected identity.
    assert.match(peerIdentityProblem({ subjectaltname: `URI:"${ID}, URI:x"` }, ID)!, /the peer is/);
  });
});
