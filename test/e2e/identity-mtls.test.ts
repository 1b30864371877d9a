// Two clusters, each with its own issuer under one trust anchor and its own control plane: a
// workload of each gets its certificate over the network and they complete mTLS over real
// node:tls sockets, each seeing the other's SPIFFE ID. Peers outside the policy are refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority } from '../../src/identity/ca.js';
import type { WorkloadIdentity } from '../../src/identity/client.js';
import type { Issuer } from '../../src/identity/pki.js';
import {
  clientTlsOptions,
  peerSpiffeId,
  serverTlsOptions,
  verifyPeer,
  type ClientCertPolicy,
  type ExpectedPeer,
  type TlsIdentity,
} from '../../src/identity/tls.js';
import { DAY, issueMaterial, meshPki, startControlPlane, staticIdentity, type RunningControlPlane } from '../unit/identity/fixtures.js';

const HELLOWORLD = 'spiffe://cluster.local/ns/sample/sa/helloworld';
const SLEEP = 'spiffe://cluster.local/ns/sample/sa/sleep';

interface Served {
  port: number;
  /** What the server saw of each accepted client, or why it refused it. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A TLS server presenting `identity`; it answers each client with the SPIFFE IDs both sides see and
 * refuses clients outside `allowed`. It `request`s client certificates so that it can say why it
 * refused one (with `require`, Node drops an unverified client before the handler runs).
 */
async function serve(identity: TlsIdentity, allowed: ExpectedPeer, clientCert: ClientCertPolicy = 'request'): Promise<Served> {
  const seen: string[] = [];
  const server = tls.createServer(serverTlsOptions(identity, { clientCert }), (socket) => {
    try {
      const client = verifyPeer(socket, allowed);
      seen.push(client);
      socket.end(`server ${identity.material().spiffeId} sees ${client} over ${socket.getProtocol()} ${socket.alpnProtocol}`);
    } catch (err) {
      seen.push(`refused: ${(err as Error).message}`);
      socket.destroy();
    }
  });
  server.on('tlsClientError', (err) => seen.push(`handshake: ${err.message}`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Connects as a mesh client; resolves with what the server said and who the client saw, or rejects with the TLS error. */
function call(port: number, options: tls.ConnectionOptions): Promise<{ answer: string; server: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    let answer = '';
    let server: string | undefined;
    socket.on('secureConnect', () => (server = peerSpiffeId(socket)));
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('end', () => (answer ? resolve({ answer, server }) : reject(new Error('the server closed the connection without answering'))));
    socket.on('error', reject);
  });
}

describe('mTLS between two clusters under one trust anchor', () => {
  let issuers: Record<string, Issuer>;
  let foreignIssuer: Issuer;
  let cluster1: RunningControlPlane;
  let cluster2: RunningControlPlane;
  let helloworld: WorkloadIdentity;
  let sleep: WorkloadIdentity;
  let server: Served;

  before(async () => {
    issuers = (await meshPki(['cluster1', 'cluster2'])).issuers;
    foreignIssuer = (await meshPki(['elsewhere'])).issuers.elsewhere!;
    cluster1 = await startControlPlane({ issuer: issuers.cluster1!, cluster: 'cluster1' });
    cluster2 = await startControlPlane({ issuer: issuers.cluster2!, cluster: 'cluster2' });
    helloworld = cluster1.workload({ namespace: 'sample', serviceAccount: 'helloworld' });
    sleep = cluster2.workload({ namespace: 'sample', serviceAccount: 'sleep' });
    await Promise.all([helloworld.start(), sleep.start()]);
    server = await serve(helloworld, SLEEP);
  });

  after(async () => {
    helloworld.stop();
    sleep.stop();
    await server.close();
    await cluster1.close();
    await cluster2.close();
  });

  it('cluster2 → cluster1: each side sees the other’s SPIFFE ID, over TLS 1.3 with h2', async () => {
    const { answer, server: seenByClient } = await call(server.port, clientTlsOptions(sleep, HELLOWORLD));
    assert.equal(seenByClient, HELLOWORLD);
    assert.equal(answer, `server ${HELLOWORLD} sees ${SLEEP} over TLSv1.3 h2`);
    assert.match(sleep.material().certChainPem, /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/);
  });

  it('and the other way round: cluster1 → cluster2', async () => {
    const back = await serve(sleep, HELLOWORLD);
    try {
      const { answer, server: seenByClient } = await call(back.port, clientTlsOptions(helloworld, SLEEP, { alpn: ['http/1.1'] }));
      assert.equal(seenByClient, SLEEP);
      assert.equal(answer, `server ${SLEEP} sees ${HELLOWORLD} over TLSv1.3 http/1.1`);
    } finally {
      await back.close();
    }
  });

  it('a client refuses a server with the right root but an unexpected identity', async () => {
    await assert.rejects(call(server.port, clientTlsOptions(sleep, 'spiffe://cluster.local/ns/sample/sa/reviews')), {
      name: 'PeerRejected',
      message: `the peer is ${HELLOWORLD}, expected spiffe://cluster.local/ns/sample/sa/reviews`,
    });
  });

  it('a server refuses a client with the right root but an unexpected identity', async () => {
    const intruder = cluster2.workload({ namespace: 'sample', serviceAccount: 'intruder' });
    await intruder.start();
    try {
      await assert.rejects(call(server.port, clientTlsOptions(intruder, HELLOWORLD)), /closed the connection without answering|ECONNRESET/);
      assert.equal(server.seen.at(-1), `refused: the peer is spiffe://cluster.local/ns/sample/sa/intruder, expected ${SLEEP}`);
    } finally {
      intruder.stop();
    }
  });

  it('both sides refuse a peer certificate from a foreign root', async () => {
    const material = await issueMaterial(new CertificateAuthority({ issuer: foreignIssuer, trustDomain: 'cluster.local' }), { namespace: 'sample', serviceAccount: 'sleep' });
    // The stranger as client: the SPIFFE ID the server allows, and it trusts the server, but its own chain leads nowhere the server trusts.
    const stranger = staticIdentity({ ...material, trustBundlePem: sleep.material().trustBundlePem });
    await assert.rejects(call(server.port, clientTlsOptions(stranger, HELLOWORLD)), /closed the connection without answering|ECONNRESET/);
    assert.equal(server.seen.at(-1), 'refused: the peer is not authenticated: UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    // The stranger as server.
    const rogue = await serve(staticIdentity(material), SLEEP);
    try {
      await assert.rejects(call(rogue.port, clientTlsOptions(sleep, HELLOWORLD)), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', err.message);
        return true;
      });
    } finally {
      await rogue.close();
    }
  });

  it('both sides refuse an expired peer certificate', async () => {
    const twoDaysAgo = new Date(Date.now() - 2 * DAY);
    const pastCa = new CertificateAuthority({ issuer: issuers.cluster2!, trustDomain: 'cluster.local', now: () => twoDaysAgo });
    const expired = staticIdentity(await issueMaterial(pastCa, { namespace: 'sample', serviceAccount: 'sleep' }));
    await assert.rejects(call(server.port, clientTlsOptions(expired, HELLOWORLD)), /closed the connection without answering|ECONNRESET/);
    assert.equal(server.seen.at(-1), 'refused: the peer is not authenticated: CERT_HAS_EXPIRED');
    const stale = await serve(expired, HELLOWORLD);
    try {
      await assert.rejects(call(stale.port, clientTlsOptions(helloworld, SLEEP)), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'CERT_HAS_EXPIRED', err.message);
        return true;
      });
    } finally {
      await stale.close();
    }
  });

  it('a server that requires client certificates refuses, in the handshake, clients without one or from a foreign root, and TLS 1.2', async () => {
    const strict = await serve(helloworld, SLEEP, 'require');
    try {
      const anchors = sleep.material().trustBundlePem;
      const noCert = { ca: anchors, checkServerIdentity: () => undefined };
      await assert.rejects(call(strict.port, noCert), /certificate required|ECONNRESET|closed the connection/i);
      const foreign = await issueMaterial(new CertificateAuthority({ issuer: foreignIssuer, trustDomain: 'cluster.local' }), { namespace: 'sample', serviceAccount: 'sleep' });
      await assert.rejects(call(strict.port, clientTlsOptions(staticIdentity({ ...foreign, trustBundlePem: anchors }), HELLOWORLD)), /ECONNRESET|closed the connection/i);
      await assert.rejects(call(strict.port, { ...noCert, maxVersion: 'TLSv1.2' }), /protocol version|unsupported protocol/i);
      assert.deepEqual(strict.seen.filter((s) => !s.startsWith('handshake: ')), [], 'no refused client reached the handler');
      // The same server still serves the allowed peer.
      assert.equal((await call(strict.port, clientTlsOptions(sleep, HELLOWORLD))).server, HELLOWORLD);
    } finally {
      await strict.close();
    }
  });
});
