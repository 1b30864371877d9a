// Certificate renewal under steady traffic drops no request: with workload certificates living
// five seconds, a server and a client both renew several times while requests flow over one
// long-lived HTTP/2 connection and over new connections made all along.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { WorkloadIdentity } from '../../src/identity/client.js';
import { clientTlsOptions, followRotation, peerSpiffeId, serverTlsOptions } from '../../src/identity/tls.js';
import { meshPki, startControlPlane, type RunningControlPlane } from '../unit/identity/fixtures.js';

const SERVER_ID = 'spiffe://cluster.local/ns/sample/sa/helloworld';
const CLIENT_ID = 'spiffe://cluster.local/ns/sample/sa/sleep';

/** One GET over `session`; resolves with the body or rejects with why it failed. */
function get(session: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/hello' });
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (headers) => {
      if (headers[':status'] !== 200) reject(new Error(`status ${headers[':status']}`));
    });
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve(body));
    req.on('error', reject);
    req.end();
  });
}

describe('renewal under steady traffic', () => {
  let cp: RunningControlPlane;
  let serverIdentity: WorkloadIdentity;
  let clientIdentity: WorkloadIdentity;
  let server: http2.Http2SecureServer;
  let port: number;

  before(async () => {
    const { issuers } = await meshPki(['cluster1']);
    cp = await startControlPlane({ issuer: issuers.cluster1!, cluster: 'cluster1', leafLifetimeMs: 5000, clockSkewMs: 1000 });
    serverIdentity = cp.workload({ namespace: 'sample', serviceAccount: 'helloworld' });
    clientIdentity = cp.workload({ namespace: 'sample', serviceAccount: 'sleep' });
    await Promise.all([serverIdentity.start(), clientIdentity.start()]);
    server = http2.createSecureServer(serverTlsOptions(serverIdentity), (req, res) => {
      const peer = peerSpiffeId(req.socket as TLSSocket);
      res.end(peer === CLIENT_ID ? `hello ${peer}` : `unexpected peer ${peer}`);
    });
    followRotation(server, serverIdentity);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    serverIdentity.stop();
    clientIdentity.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await cp.close();
  });

  it('keeps every request working while both sides rotate', async () => {
    let serverRotations = 0;
    let clientRotations = 0;
    serverIdentity.onRotate(() => serverRotations++);
    clientIdentity.onRotate(() => clientRotations++);
    const failures: string[] = [];
    const connect = (name: string) =>
      http2.connect(`https://127.0.0.1:${port}`, clientTlsOptions(clientIdentity, SERVER_ID)).on('error', (err: Error) => failures.push(`${name} session: ${err.message}`));

    const longLived = connect('long-lived');
    const serverCertsSeen = new Set<string>();
    let longLivedOk = 0;
    let freshOk = 0;
    const deadline = Date.now() + 8_000;

    const steady = (async () => {
      while (Date.now() < deadline) {
        try {
          const body = await get(longLived);
          if (body === `hello ${CLIENT_ID}`) longLivedOk++;
          else failures.push(`long-lived: ${body}`);
        } catch (err) {
          failures.push(`long-lived: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const fresh = (async () => {
      while (Date.now() < deadline) {
        const session = connect('fresh');
        try {
          const body = await get(session);
          serverCertsSeen.add((session.socket as TLSSocket).getPeerCertificate().fingerprint256);
          if (body === `hello ${CLIENT_ID}`) freshOk++;
          else failures.push(`fresh: ${body}`);
        } catch (err) {
          failures.push(`fresh: ${(err as Error).message}`);
        } finally {
          session.close();
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all([steady, fresh]);
    const socket = longLived.socket as TLSSocket;
    const longLivedServerCert = socket.getPeerCertificate();
    longLived.close();

    assert.deepEqual(failures, []);
    assert.ok(serverRotations >= 2 && clientRotations >= 2, `both sides renewed more than once (server ${serverRotations}, client ${clientRotations})`);
    assert.ok(serverCertsSeen.size >= 3, `new connections saw the renewed server certificates (${serverCertsSeen.size} distinct)`);
    assert.ok(longLivedOk > 100 && freshOk > 50, `requests flowed throughout (long-lived ${longLivedOk}, fresh ${freshOk})`);
    assert.ok(new Date(longLivedServerCert.valid_to).getTime() < Date.now(), 'the long-lived connection outlived the certificate it began with, undisturbed');
  });
});
