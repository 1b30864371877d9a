// A cluster's certificate authority: signs workload CSRs with the cluster's issuer. The identity in
// the certificate is the one the caller's credential grants; the CSR contributes only its public key.
import type { Certifier } from './client.js';
import { publicKeyOf, requireEcdsaP256, sanText, signLeaf, DEFAULT_CLOCK_SKEW_MS, type Issuer } from './pki.js';
import { PkiError } from './pem.js';
import { spiffeId, type WorkloadName } from './spiffe.js';
import { derOf, x509 } from './x509.js';

const SUBJECT_ALT_NAME = '2.5.29.17';

export const DEFAULT_LEAF_LIFETIME_MS = 24 * 60 * 60_000;

export type CsrRejection = 'malformed' | 'bad-signature' | 'weak-key' | 'identity-mismatch';

/** A CSR was refused; nothing was issued. */
export class CsrRejected extends Error {
  override name = 'CsrRejected';
  constructor(
    readonly reason: CsrRejection,
    message: string,
  ) {
    super(message);
  }
}

/** The CA cannot sign at all right now (its issuer has expired): the operator must act, not the caller. */
export class IssuerUnusable extends Error {
  override name = 'IssuerUnusable';
}

export interface CertificateAuthorityOptions {
  issuer: Issuer;
  trustDomain: string;
  /** Lifetime of workload certificates; 24 h by default. */
  leafLifetimeMs?: number;
  /** How far notBefore is backdated so peers with slow clocks accept new certificates. */
  clockSkewMs?: number;
  now?: () => Date;
}

export interface IssuedCertificate {
  spiffeId: string;
  certificate: x509.X509Certificate;
  /** The certificate first, then its issuer and any intermediates (never the anchor). */
  chain: x509.X509Certificate[];
  trustBundle: x509.X509Certificate[];
}

export class CertificateAuthority {
  readonly trustDomain: string;
  private readonly issuer: Issuer;
  private readonly leafLifetimeMs: number;
  private readonly clockSkewMs: number;
  private readonly now: () => Date;

  constructor(options: CertificateAuthorityOptions) {
    this.issuer = options.issuer;
    this.trustDomain = options.trustDomain;
    this.leafLifetimeMs = options.leafLifetimeMs ?? DEFAULT_LEAF_LIFETIME_MS;
    this.clockSkewMs = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    this.now = options.now ?? (() => new Date());
  }

  get trustBundle(): x509.X509Certificate[] {
    return this.issuer.trustBundle;
  }

  /** Checks the CSR and signs a certificate for `workload`'s SPIFFE ID. Throws CsrRejected or IssuerUnusable. */
  async certify(csrDer: Uint8Array, workload: WorkloadName): Promise<IssuedCertificate> {
    const id = spiffeId(this.trustDomain, workload);
    const csr = await checkCsr(csrDer, id);
    const now = this.now();
    const issuing = [this.issuer.certificate, ...this.issuer.intermediates];
    const expiry = Math.min(...issuing.map((c) => c.notAfter.getTime()));
    if (expiry <= now.getTime()) {
      throw new IssuerUnusable(`the issuer '${this.issuer.certificate.subject}' expired on ${new Date(expiry).toISOString()}; install a new issuer`);
    }
    const certificate = await signLeaf({
      issuer: this.issuer,
      publicKey: csr.publicKey,
      spiffeId: id,
      notBefore: new Date(now.getTime() - this.clockSkewMs),
      // A certificate never outlives the certificates that vouch for it.
      notAfter: new Date(Math.min(now.getTime() + this.leafLifetimeMs, expiry)),
    });
    return { spiffeId: id, certificate, chain: [certificate, ...issuing], trustBundle: this.issuer.trustBundle };
  }
}

/**
 * Checks a CSR: it parses, its signature verifies with its own key (proof of possession), the key
 * is ECDSA P-256, and it asks for no identity other than `id` (an empty subject, or CN=<id>, and
 * at most the URI SAN <id>). Other requested extensions are ignored: the certificate's extensions
 * come from Strait's template only.
 */
async function checkCsr(csrDer: Uint8Array, id: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(csrDer));
  } catch (err) {
    throw new CsrRejected('malformed', `the CSR is not a DER-encoded PKCS#10 request: ${(err as Error).message}`);
  }
  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch {
    // An unsupported algorithm or a mangled signature both mean: not verified.
  }
  if (!signatureOk) throw new CsrRejected('bad-signature', 'the CSR signature does not verify with the key it carries');
  try {
    requireEcdsaP256(publicKeyOf(csr), 'the CSR key');
  } catch (err) {
    if (err instanceof PkiError) throw new CsrRejected('weak-key', err.message);
    throw err;
  }
  const subject = csr.subjectName.toJSON();
  const subjectOk = subject.length === 0 || (subject.length === 1 && JSON.stringify(subject[0]) === JSON.stringify({ CN: [id] }));
  if (!subjectOk) {
    throw new CsrRejected('identity-mismatch', `the CSR asks for subject '${csr.subject}' but the credential grants ${id}; leave the subject empty`);
  }
  for (const ext of csr.extensions) {
    if (ext.type !== SUBJECT_ALT_NAME) continue;
    let names: readonly x509.GeneralName[];
    try {
      names = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
    } catch (err) {
      throw new CsrRejected('malformed', `the CSR's subjectAltName cannot be read: ${(err as Error).message}`);
    }
    const other = names.find((n) => n.type !== 'url' || n.value !== id);
    if (other) {
      throw new CsrRejected('identity-mismatch', `the CSR asks for ${sanText(other)} but the credential grants ${id}`);
    }
  }
  return csr;
}

/** A Certifier that signs directly with a local CA, for the control plane's own certificate. */
export function localCertifier(ca: CertificateAuthority, workload: WorkloadName): Certifier {
  return {
    async certify(csr) {
      const issued = await ca.certify(csr, workload);
      return { certChain: issued.chain.map(derOf), trustBundle: issued.trustBundle.map(derOf) };
    },
  };
}
