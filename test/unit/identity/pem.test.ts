import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificates, parsePrivateKey, readCertificates, readPrivateKey, PkiError } from '../../../src/identity/pem.js';
import { describeKey } from '../../../src/identity/pki.js';
import { makeKey, openssl, stepRootCa, tempDir } from './fixtures.js';

describe('PEM reading', () => {
  const tmp = tempDir();
  after(tmp.remove);
  const root = stepRootCa(tmp.dir);
  const certPem = readFileSync(root.cert, 'utf8');
  const keyPem = readFileSync(root.key, 'utf8');

  it('reads a certificate and a SEC1 key as step writes them', () => {
    const [cert] = readCertificates(root.cert);
    assert.equal(cert?.subject, 'CN=root.linkerd.cluster.local');
    assert.equal(describeKey(readPrivateKey(root.key)), 'ECDSA P-256');
  });

  it('reads PKCS#8 and PKCS#1 keys, and skips the EC PARAMETERS block openssl ecparam writes', () => {
    openssl(tmp.dir, ['pkcs8', '-topk8', '-nocrypt', '-in', root.key, '-out', 'pk8.key']);
    assert.equal(describeKey(readPrivateKey(join(tmp.dir, 'pk8.key'))), 'ECDSA P-256');
    openssl(tmp.dir, ['genrsa', '-traditional', '-out', 'rsa.key', '2048']);
    assert.match(readFileSync(join(tmp.dir, 'rsa.key'), 'utf8'), /BEGIN RSA PRIVATE KEY/);
    assert.equal(describeKey(readPrivateKey(join(tmp.dir, 'rsa.key'))), 'RSA 2048');
    openssl(tmp.dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-out', 'params.key']);
    assert.match(readFileSync(join(tmp.dir, 'params.key'), 'utf8'), /BEGIN EC PARAMETERS/);
    assert.equal(describeKey(readPrivateKey(join(tmp.dir, 'params.key'))), 'ECDSA P-256');
  });

  it('reads every certificate of a bundle', () => {
    assert.equal(parseCertificates(certPem + certPem, 'bundle.pem').length, 2);
  });

  const rejects: [string, () => unknown, RegExp][] = [
    ['text that is not PEM', () => parseCertificates('hello: world\n', 'x.crt'), /x\.crt: not a PEM file/],
    ['DER instead of PEM', () => parseCertificates(Buffer.from([0x30, 0x82, 0x00, 0x01]).toString('latin1') + '\u0000', 'x.der'), /x\.der: not a PEM file.*DER/],
    ['a truncated certificate (no END line)', () => parseCertificates(certPem.slice(0, certPem.length / 2), 'cut.crt'), /cut\.crt: truncated PEM: the CERTIFICATE block that begins on line 1 has no "-----END CERTIFICATE-----" line/],
    [
      'a certificate cut in the middle of its base64 but with an END line',
      () => parseCertificates(certPem.split('\n').filter((_, i) => i !== 3).join('\n'), 'cut.crt'),
      /cut\.crt: (the CERTIFICATE block that begins on line 1 is not valid base64|certificate #1 \(line 1\) cannot be parsed)/,
    ],
    ['base64 with garbage', () => parseCertificates(certPem.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!'), 'bad.crt'), /bad\.crt: the CERTIFICATE block .* is not valid base64/],
    ['END of another type', () => parseCertificates(certPem.replace('END CERTIFICATE', 'END PRIVATE KEY'), 'm.crt'), /m\.crt: the CERTIFICATE block that begins on line 1 ends as PRIVATE KEY/],
    ['a key where a certificate belongs', () => parseCertificates(keyPem, 'ca.key'), /ca\.key holds an EC PRIVATE KEY, not a CERTIFICATE/],
    ['a key inside a certificate bundle', () => parseCertificates(certPem + keyPem, 'mixed.pem'), /mixed\.pem block #2 \(line \d+\) is an EC PRIVATE KEY, not a CERTIFICATE/],
    ['a certificate where a key belongs', () => parsePrivateKey(certPem, 'ca.crt'), /ca\.crt holds a CERTIFICATE, not a private key/],
    ['two keys in a key file', () => parsePrivateKey(keyPem + keyPem, 'two.key'), /two\.key holds 2 PEM blocks/],
    ['a truncated key', () => parsePrivateKey(keyPem.slice(0, 60), 'cut.key'), /cut\.key: truncated PEM/],
    ['an encrypted key', () => parsePrivateKey('-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n', 'enc.key'), /enc\.key: the private key is encrypted/],
  ];
  for (const [what, fn, message] of rejects) {
    it(`rejects ${what}, naming the file`, () => {
      assert.throws(fn, (err: Error) => err instanceof PkiError && message.test(err.message));
    });
  }

  it('rejects a file that does not exist, naming it', () => {
    assert.throws(() => readCertificates(join(tmp.dir, 'missing.crt')), /missing\.crt: cannot read: no such file/);
  });

  it('rejects a CSR given as a certificate', () => {
    makeKey(tmp.dir, 'w.key');
    openssl(tmp.dir, ['req', '-new', '-key', 'w.key', '-subj', '/CN=w', '-out', 'w.csr']);
    assert.throws(() => readCertificates(join(tmp.dir, 'w.csr')), /w\.csr holds a CERTIFICATE REQUEST, not a CERTIFICATE/);
    writeFileSync(join(tmp.dir, 'empty.crt'), '');
    assert.throws(() => readCertificates(join(tmp.dir, 'empty.crt')), /empty\.crt: not a PEM file/);
  });
});
