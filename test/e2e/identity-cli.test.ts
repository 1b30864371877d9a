// `strait certs create` and `strait certs inspect` through the real CLI, checked with the real openssl.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Mesh } from '../support/cli.js';
import { openssl, tempDir } from '../unit/identity/fixtures.js';

const DAY = 86_400_000;

function lifetimeMs(dir: string, file: string): number {
  const [, start, end] = /notBefore=(.+)\nnotAfter=(.+)/.exec(openssl(dir, ['x509', '-in', file, '-noout', '-startdate', '-enddate']))!;
  return Date.parse(end!) - Date.parse(start!);
}

describe('strait certs', () => {
  const mesh = new Mesh();
  const tmp = tempDir();
  after(async () => {
    tmp.remove();
    await mesh.destroy();
  });

  it('create writes a 10-year trust anchor and a 1-year issuer per cluster that openssl verifies', async () => {
    const out = join(tmp.dir, 'pki');
    const stdout = await mesh.ok(['certs', 'create', '--trust-domain', 'cluster.local', '--clusters', 'cluster1,cluster2', '--out', out]);
    assert.match(stdout, /issuer-cluster1\.key\s+\(private key, mode 0600\)/);
    assert.deepEqual(readdirSync(out).sort(), ['issuer-cluster1.crt', 'issuer-cluster1.key', 'issuer-cluster2.crt', 'issuer-cluster2.key', 'trust-anchor.crt', 'trust-anchor.key']);
    for (const key of ['trust-anchor.key', 'issuer-cluster1.key', 'issuer-cluster2.key']) assert.equal(statSync(join(out, key)).mode & 0o777, 0o600);
    assert.equal(lifetimeMs(out, 'trust-anchor.crt'), 3650 * DAY + 60_000);
    for (const cluster of ['cluster1', 'cluster2']) {
      assert.equal(openssl(out, ['verify', '-CAfile', 'trust-anchor.crt', `issuer-${cluster}.crt`]).trim(), `issuer-${cluster}.crt: OK`);
      const text = openssl(out, ['x509', '-in', `issuer-${cluster}.crt`, '-noout', '-text']);
      assert.match(text, new RegExp(`Subject: O = cluster.local, CN = Strait issuer for ${cluster}`));
      assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
      assert.match(text, /NIST CURVE: P-256/);
      assert.equal(lifetimeMs(out, `issuer-${cluster}.crt`), 365 * DAY + 60_000);
    }
    const root = openssl(out, ['x509', '-in', 'trust-anchor.crt', '-noout', '-text']);
    assert.match(root, /Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
    // The key matches its certificate.
    const pub = (args: string[]) => openssl(out, args);
    assert.equal(pub(['pkey', '-in', 'issuer-cluster1.key', '-pubout']), pub(['x509', '-in', 'issuer-cluster1.crt', '-noout', '-pubkey']));
  });

  it('create --shared-issuer writes one issuer, with the lifetimes asked for', async () => {
    const out = join(tmp.dir, 'shared');
    await mesh.ok(['certs', 'create', '--trust-domain', 'example.org', '--shared-issuer', '--out', out, '--root-lifetime', '87600h', '--issuer-lifetime', '30d']);
    assert.deepEqual(readdirSync(out).sort(), ['issuer.crt', 'issuer.key', 'trust-anchor.crt', 'trust-anchor.key']);
    assert.equal(lifetimeMs(out, 'trust-anchor.crt'), 3650 * DAY + 60_000);
    assert.equal(lifetimeMs(out, 'issuer.crt'), 30 * DAY + 60_000);
    assert.match(openssl(out, ['x509', '-in', 'issuer.crt', '-noout', '-subject']), /O = example\.org, CN = Strait shared issuer/);
  });

  it('inspect shows each certificate of a chain with subject, validity, key, fingerprint and links', async () => {
    const out = join(tmp.dir, 'pki');
    const chain = join(tmp.dir, 'chain.pem');
    writeFileSync(chain, readFileSync(join(out, 'issuer-cluster1.crt'), 'utf8') + readFileSync(join(out, 'trust-anchor.crt'), 'utf8'));
    const text = await mesh.ok(['certs', 'inspect', chain]);
    assert.match(text, /chain\.pem: 2 certificates/);
    assert.match(text, /Certificate #1\n\s+Subject:\s+O=cluster\.local, CN=Strait issuer for cluster1/);
    assert.match(text, /Key:\s+ECDSA P-256/);
    assert.match(text, /CA:\s+yes, path length 0/);
    assert.match(text, /Chain:\s+signed by #2/);
    assert.match(text, /Chain:\s+self-signed/);
    const fingerprint = openssl(out, ['x509', '-in', 'issuer-cluster1.crt', '-noout', '-fingerprint', '-sha256']).split('=')[1]!.trim();
    assert.ok(text.includes(`SHA-256:     ${fingerprint}`), text);

    const report = JSON.parse(await mesh.ok(['certs', 'inspect', '-o', 'json', join(out, 'issuer-cluster1.crt')])) as {
      certificates: { subject: string; sans: string[]; notAfter: string; key: string; sha256: string; publicKeySha256: string; state: string }[];
    };
    assert.equal(report.certificates.length, 1);
    assert.equal(report.certificates[0]!.sha256, fingerprint);
    assert.equal(report.certificates[0]!.state, 'valid');
    const key = JSON.parse(await mesh.ok(['certs', 'inspect', '-o', 'json', join(out, 'issuer-cluster1.key')])) as { privateKey: { key: string; publicKeySha256: string } };
    assert.deepEqual(key.privateKey, { key: 'ECDSA P-256', publicKeySha256: report.certificates[0]!.publicKeySha256 });
  });

  it('create refuses to overwrite existing files (exit 1) and changes nothing', async () => {
    const out = join(tmp.dir, 'pki');
    const before = readFileSync(join(out, 'trust-anchor.key'), 'utf8');
    const r = await mesh.run(['certs', 'create', '--clusters', 'cluster1', '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /trust-anchor\.crt, .* already exist; refusing to overwrite/);
    assert.equal(readFileSync(join(out, 'trust-anchor.key'), 'utf8'), before);
  });

  const usage: [string, string[], RegExp][] = [
    ['an invalid trust domain', ['--trust-domain', 'Cluster Local', '--clusters', 'c1'], /--trust-domain "Cluster Local": only lower-case letters/],
    ['an invalid cluster name', ['--clusters', 'cluster_1'], /--clusters: "cluster_1" is not a valid cluster name/],
    ['no clusters and no shared issuer', [], /--clusters c1,c2,… is required/],
    ['a malformed lifetime', ['--clusters', 'c1', '--issuer-lifetime', 'a year'], /--issuer-lifetime: "a year" is not a duration/],
    ['an issuer outliving its root', ['--clusters', 'c1', '--root-lifetime', '1y', '--issuer-lifetime', '2y'], /cannot outlive its trust anchor/],
  ];
  for (const [what, args, message] of usage) {
    it(`create rejects ${what} as a usage error (exit 2), writing nothing`, async () => {
      const out = join(tmp.dir, `never-${what.replace(/\W+/g, '-')}`);
      const r = await mesh.run(['certs', 'create', '--out', out, ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.throws(() => statSync(out), /ENOENT/);
    });
  }

  it('create without --out is a usage error', async () => {
    const r = await mesh.run(['certs', 'create', '--clusters', 'c1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--out DIR is required/);
  });

  it('inspect names the file and the problem for truncated PEM, other PEM, and missing files (exit 1)', async () => {
    const cut = join(tmp.dir, 'cut.crt');
    writeFileSync(cut, readFileSync(join(tmp.dir, 'pki', 'trust-anchor.crt'), 'utf8').slice(0, 300));
    const truncated = await mesh.run(['certs', 'inspect', cut]);
    assert.equal(truncated.code, 1);
    assert.match(truncated.stderr, /cut\.crt: truncated PEM: the CERTIFICATE block that begins on line 1 has no "-----END CERTIFICATE-----" line/);
    openssl(tmp.dir, ['req', '-new', '-key', join(tmp.dir, 'pki', 'issuer-cluster1.key'), '-subj', '/CN=x', '-out', 'x.csr']);
    const csr = await mesh.run(['certs', 'inspect', join(tmp.dir, 'x.csr')]);
    assert.equal(csr.code, 1);
    assert.match(csr.stderr, /x\.csr holds a CERTIFICATE REQUEST; inspect reads certificates and private keys/);
    const missing = await mesh.run(['certs', 'inspect', join(tmp.dir, 'nope.pem')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.pem: cannot read: no such file/);
  });
});
