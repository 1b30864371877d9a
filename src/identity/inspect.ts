// What `strait certs inspect` shows: for every certificate in a PEM file its subject, SANs,
// validity, key type and fingerprint, and how the certificates chain; for a key file its type.
import { createPublicKey } from 'node:crypto';
import { formatLifetime } from './duration.js';
import { aPemLabel, parseCertificates, parsePrivateKey, pemBlocks, PkiError } from './pem.js';
import { describeKey, fingerprintSha256, publicKeyOf, sanText } from './pki.js';
import { x509 } from './x509.js';

export interface CertificateReport {
  index: number;
  subject: string;
  issuer: string;
  sans: string[];
  notBefore: string;
  notAfter: string;
  lifetime: string;
  state: 'valid' | 'expired' | 'not yet valid';
  key: string;
  /** SHA-256 of the public key (SPKI DER): equal to a key file's, for the key that belongs to this certificate. */
  publicKeySha256: string;
  ca: boolean;
  pathLength?: number;
  serial: string;
  sha256: string;
  /** "self-signed", "signed by #2", or "issued by '<name>' (not in this file)". */
  chain: string;
}

export interface KeyReport {
  key: string;
  /** SHA-256 of the public key (SPKI DER), to match it with a certificate's key. */
  publicKeySha256: string;
}

export type InspectReport = { file: string; certificates: CertificateReport[] } | { file: string; privateKey: KeyReport };

async function signs(parent: x509.X509Certificate, child: x509.X509Certificate): Promise<boolean> {
  try {
    return await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

async function chainNote(certs: x509.X509Certificate[], i: number): Promise<string> {
  const cert = certs[i]!;
  if (cert.subject === cert.issuer && (await signs(cert, cert))) return 'self-signed';
  for (const [j, other] of certs.entries()) if (j !== i && (await signs(other, cert))) return `signed by #${j + 1}`;
  return `issued by '${cert.issuer}' (not in this file)`;
}

async function certificateReport(certs: x509.X509Certificate[], i: number, now: Date): Promise<CertificateReport> {
  const cert = certs[i]!;
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  return {
    index: i + 1,
    subject: cert.subject,
    issuer: cert.issuer,
    sans: san ? san.names.items.map(sanText) : [],
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    lifetime: formatLifetime(cert.notAfter.getTime() - cert.notBefore.getTime()),
    state: now < cert.notBefore ? 'not yet valid' : now > cert.notAfter ? 'expired' : 'valid',
    key: describeKey(publicKeyOf(cert)),
    publicKeySha256: fingerprintSha256(cert.publicKey.rawData),
    ca: bc?.ca ?? false,
    ...(bc?.pathLength === undefined ? {} : { pathLength: bc.pathLength }),
    serial: cert.serialNumber,
    sha256: fingerprintSha256(cert.rawData),
    chain: await chainNote(certs, i),
  };
}

/** The report as text for a person. */
export function formatInspectReport(report: InspectReport): string {
  if ('privateKey' in report) {
    return [`${report.file}: private key`, `  Key:         ${report.privateKey.key}`, `  Public key:  SHA-256 ${report.privateKey.publicKeySha256}`].join('\n');
  }
  const n = report.certificates.length;
  const lines = [`${report.file}: ${n} certificate${n === 1 ? '' : 's'}`];
  for (const c of report.certificates) {
    lines.push(
      '',
      `Certificate #${c.index}`,
      `  Subject:     ${c.subject || '(empty)'}`,
      `  Issuer:      ${c.issuer}`,
      `  SANs:        ${c.sans.length === 0 ? '(none)' : c.sans.join(', ')}`,
      `  Valid:       ${c.notBefore} to ${c.notAfter} (${c.lifetime}; ${c.state})`,
      `  Key:         ${c.key}`,
      `  CA:          ${c.ca ? `yes${c.pathLength === undefined ? '' : `, path length ${c.pathLength}`}` : 'no'}`,
      `  Serial:      ${c.serial}`,
      `  SHA-256:     ${c.sha256}`,
      `  Public key:  SHA-256 ${c.publicKeySha256}`,
      `  Chain:       ${c.chain}`,
    );
  }
  return lines.join('\n');
}

/** Reads a PEM file of certificates (one, a chain or a bundle) or a private key. */
export async function inspectPem(text: string, file: string, now = new Date()): Promise<InspectReport> {
  const blocks = pemBlocks(text, file);
  if (blocks.every((b) => b.label === 'CERTIFICATE')) {
    const certs = parseCertificates(text, file);
    return { file, certificates: await Promise.all(certs.map((_, i) => certificateReport(certs, i, now))) };
  }
  if (blocks.some((b) => b.label.includes('PRIVATE KEY'))) {
    const key = parsePrivateKey(text, file);
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    return { file, privateKey: { key: describeKey(key), publicKeySha256: fingerprintSha256(spki) } };
  }
  throw new PkiError(`${file} holds ${blocks.map((b) => aPemLabel(b.label)).join(', ')}; inspect reads certificates and private keys`);
}
