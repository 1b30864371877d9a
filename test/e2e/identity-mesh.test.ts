// Issue-level acceptance for identity through real control planes: `strait up` with step-made
// issuers under one root, pods' bootstrap tokens, certificates that openssl verifies, mTLS between
// workloads of two clusters, and bad PKI material refused before anything is written.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { caTransport, connectCertifier, WorkloadIdentity } from '../../src/identity/client.js';
import { controlPlaneSpiffeId } from '../../src/identity/spiffe.js';
import { clientTlsOptions, peerSpiffeId, serverTlsOptions } from '../../src/identity/tls.js';
import { clusterAddresses, CONTROL_PLANE_PORT } from '../../src/runtime/addresses.js';
import { Mesh, waitFor } from '../support/cli.js';
import { istioCacerts, openssl, stepIntermediateCa, stepRootCa, tempDir } from '../unit/identity/fixtures.js';

const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/default';

describe('identity through the control planes of two clusters', () => {
  const mesh = new Mesh();
  const pki = tempDir('strait-byo-');
  let root: { cert: string; key: string };
  const identities: WorkloadIdentity[] = [];

  function clusterIndex(cluster: string): number {
    const { clusters } = JSON.parse(readFileSync(join(mesh.home, 'mesh.json'), 'utf8')) as { clusters: { name: string; index: number }[] };
    return clusters.find((c) => c.name === cluster)!.index;
  }

  /** A workload identity for the sleep pod of `cluster`, using the token the runtime gave that pod. */
  async function sleepIdentity(cluster: string): Promise<WorkloadIdentity> {
    const pods = await mesh.json<{ items: { metadata: { name: string }; status?: { phase?: string } }[] }>(['get', 'pods', '-l', 'app=sleep', '--cluster', cluster]);
    const pod = pods.items[0]!.metadata.name;
    const tokenFile = join(mesh.home, 'clusters', cluster, 'pods', 'default', pod, 'identity-token');
    await waitFor(`token of ${pod}`, () => existsSync(tokenFile));
    const transport = caTransport({
      baseUrl: `https://${clusterAddresses(clusterIndex(cluster)).controlPlane}:${CONTROL_PLANE_PORT}`,
      trustBundlePem: readFileSync(root.cert, 'utf8'),
      serverIdentity: controlPlaneSpiffeId('cluster.local'),
    });
    const identity = new WorkloadIdentity({ certifier: connectCertifier(transport, () => readFileSync(tokenFile, 'utf8')), expectedSpiffeId: SLEEP_ID });
    identities.push(identity);
    await identity.start();
    return identity;
  }

  before(async () => {
    root = stepRootCa(pki.dir);
    const i1 = stepIntermediateCa(pki.dir, root, { name: 'issuer1' });
    const i2 = stepIntermediateCa(pki.dir, root, { name: 'issuer2' });
    await mesh.ok([
      'up', '--clusters', 'cluster1,cluster2', '--trust-anchor', root.cert,
      '--issuer-cert', `cluster1=${i1.cert}`, '--issuer-key', `cluster1=${i1.key}`,
      '--issuer-cert', `cluster2=${i2.cert}`, '--issuer-key', `cluster2=${i2.key}`,
    ]);
    for (const c of ['cluster1', 'cluster2']) await mesh.ok(['apply', '-f', 'examples/linkerd/sleep.yaml', '--cluster', c]);
  });

  after(async () => {
    for (const i of identities) i.stop();
    await mesh.destroy();
    pki.remove();
  });

  it('issues each pod a certificate that openssl verifies under the given root and issuer', async () => {
    const identity = await sleepIdentity('cluster1');
    const material = identity.material();
    assert.equal(material.spiffeId, SLEEP_ID);
    const leaf = join(pki.dir, 'leaf.pem');
    const chain = material.certChainPem.split(/(?<=-----END CERTIFICATE-----\n?)/).filter((b) => b.includes('BEGIN'));
    writeFileSync(leaf, chain[0]!);
    writeFileSync(join(pki.dir, 'untrusted.pem'), chain.slice(1).join(''));
    assert.match(openssl(pki.dir, ['verify', '-CAfile', root.cert, '-untrusted', 'untrusted.pem', 'leaf.pem']), /leaf\.pem: OK/);
    const text = openssl(pki.dir, ['x509', '-in', 'leaf.pem', '-noout', '-text']);
    assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/default/);
    const notBefore = Date.parse(/Not Before: (.*)/.exec(text)![1]!);
    const notAfter = Date.parse(/Not After : (.*)/.exec(text)![1]!);
    const hours = (notAfter - notBefore) / 3_600_000;
    assert.ok(hours >= 24 && hours <= 24.1, `lifetime ${hours} h is 24 h plus the clock-skew allowance`);
  });

  it('lets workloads of two clusters, each with its own issuer, complete mTLS and see each other', async () => {
    const [one, two] = [await sleepIdentity('cluster1'), await sleepIdentity('cluster2')];
    assert.notEqual(one.material().certChainPem, two.material().certChainPem);
    // The server answers with the identity it saw; the client reads the server's from the handshake.
    const server = tls.createServer(serverTlsOptions(one, { clientCert: 'require' }), (socket) => socket.end(peerSpiffeId(socket) ?? 'none'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const [seenByClient, seenByServer] = await new Promise<[string | undefined, string]>((resolve, reject) => {
      const socket = tls.connect({ ...clientTlsOptions(two, SLEEP_ID), host: '127.0.0.1', port });
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      socket.on('end', () => resolve([peerSpiffeId(socket), answer]));
      socket.on('error', reject);
    });
    server.close();
    assert.equal(seenByClient, SLEEP_ID);
    assert.equal(seenByServer, SLEEP_ID);
  });

  it('keeps the PKI across down and up', async () => {
    const before = readFileSync(join(mesh.home, 'clusters', 'cluster1', 'identity', 'issuer.crt'), 'utf8');
    await mesh.ok(['down']);
    await mesh.ok(['up']);
    assert.equal(readFileSync(join(mesh.home, 'clusters', 'cluster1', 'identity', 'issuer.crt'), 'utf8'), before);
    await waitFor('sleep running again', async () => (await sleepIdentity('cluster2')).status() === 'ready');
  });
});

describe('bad PKI material given to strait up', () => {
  const pki = tempDir('strait-badpki-');
  const root = stepRootCa(pki.dir);
  const other = stepRootCa(pki.dir, { name: 'other', cn: 'other root' });

  after(() => pki.remove());

  const cases: { name: string; args: () => string[]; error: RegExp }[] = [
    {
      name: 'an issuer key that does not match its certificate',
      args: () => {
        const i = stepIntermediateCa(pki.dir, root, { name: 'mismatch' });
        const k = stepIntermediateCa(pki.dir, root, { name: 'otherkey' });
        return ['--trust-anchor', root.cert, '--issuer-cert', i.cert, '--issuer-key', k.key];
      },
      error: /otherkey\.key/,
    },
    {
      name: 'an issuer that is not a CA',
      args: () => {
        const i = stepIntermediateCa(pki.dir, root, { name: 'leafish', extensions: 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature' });
        return ['--trust-anchor', root.cert, '--issuer-cert', i.cert, '--issuer-key', i.key];
      },
      error: /leafish\.crt/,
    },
    {
      name: 'an issuer that does not chain to the anchor',
      args: () => {
        const i = stepIntermediateCa(pki.dir, other, { name: 'foreign' });
        return ['--trust-anchor', root.cert, '--issuer-cert', i.cert, '--issuer-key', i.key];
      },
      error: /foreign\.crt/,
    },
    {
      name: 'a truncated PEM',
      args: () => {
        const i = stepIntermediateCa(pki.dir, root, { name: 'cut' });
        writeFileSync(i.cert, readFileSync(i.cert, 'utf8').slice(0, 200));
        return ['--trust-anchor', root.cert, '--issuer-cert', i.cert, '--issuer-key', i.key];
      },
      error: /cut\.crt/,
    },
    { name: 'an issuer without its key', args: () => ['--trust-anchor', root.cert, '--issuer-cert', root.cert], error: /--issuer-cert and --issuer-key go together/ },
  ];

  it('accepts an Istio cacerts directory', async () => {
    const mesh = new Mesh();
    try {
      const dir = istioCacerts(join(pki.dir, 'cacerts'));
      await mesh.ok(['up', '--clusters', 'c1', '--cacerts', `c1=${dir}`]);
      const installed = readFileSync(join(mesh.home, 'clusters', 'c1', 'identity', 'issuer.crt'), 'utf8');
      assert.equal(installed.trim(), readFileSync(join(dir, 'ca-cert.pem'), 'utf8').trim());
    } finally {
      await mesh.destroy();
    }
  });

  for (const c of cases) {
    it(`refuses ${c.name}, exits 1 and writes nothing`, async () => {
      const mesh = new Mesh();
      try {
        const r = await mesh.run(['up', '--clusters', 'c1', ...c.args()]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, c.error);
        assert.equal(existsSync(join(mesh.home, 'mesh.json')), false);
        assert.deepEqual(mesh.processes(), []);
      } finally {
        await mesh.destroy();
      }
    });
  }
});
