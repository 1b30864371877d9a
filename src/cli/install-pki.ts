// The certificates `strait install` puts into a cluster: the mesh issuer under its trust anchor
// (made here, as `strait certs create` makes them, or the user's step or Istio files, checked), and
// the injector webhook's own serving certificate, which the API server trusts through its caBundle.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ISTIO_CACERTS, loadIssuerFiles, loadIstioCacerts } from '../identity/files.js';
import { certificatesPem } from '../identity/pem.js';
import { createIssuer, createTrustAnchor } from '../identity/pki.js';
import { ECDSA_P256, generateKeyPair, privateKeyPem, x509 } from '../identity/x509.js';
import { randomBytes } from 'node:crypto';
import { UsageError } from './context.js';

/** PEM text of the issuer and its anchors, as the issuer Secret and trust-anchor ConfigMap hold them. */
export interface IssuerPem {
  trustAnchors: string;
  /** The issuer certificate, then any intermediates up to the anchor. */
  issuerCert: string;
  issuerKey: string;
}

export interface PkiFlags {
  trustAnchor?: string;
  issuerCert?: string;
  issuerKey?: string;
  cacerts?: string;
}

/** Whether the user brought PKI material. */
export const bringsPki = (f: PkiFlags) => [f.trustAnchor, f.issuerCert, f.issuerKey, f.cacerts].some((v) => v !== undefined);

/** The user's issuer, checked as `strait up` checks it (CA, P-256, key matches, chains to the anchor). */
export async function loadIssuerPem(flags: PkiFlags): Promise<IssuerPem> {
  if (flags.cacerts !== undefined) {
    if (flags.trustAnchor ?? flags.issuerCert ?? flags.issuerKey) throw new UsageError('give either --cacerts or --trust-anchor/--issuer-cert/--issuer-key, not both');
    const issuer = await loadIstioCacerts(flags.cacerts);
    return {
      trustAnchors: certificatesPem(issuer.trustBundle),
      issuerCert: certificatesPem([issuer.certificate, ...issuer.intermediates]),
      issuerKey: readFileSync(join(flags.cacerts, ISTIO_CACERTS.key), 'utf8'),
    };
  }
  if (flags.trustAnchor === undefined || flags.issuerCert === undefined || flags.issuerKey === undefined) {
    throw new UsageError('--trust-anchor, --issuer-cert and --issuer-key go together (step\'s root-ca and intermediate-ca output); one is missing');
  }
  const issuer = await loadIssuerFiles({ trustAnchor: flags.trustAnchor, issuerCert: flags.issuerCert, issuerKey: flags.issuerKey });
  return {
    trustAnchors: certificatesPem(issuer.trustBundle),
    issuerCert: certificatesPem([issuer.certificate, ...issuer.intermediates]),
    issuerKey: readFileSync(flags.issuerKey, 'utf8'),
  };
}

/** A new trust anchor and an issuer for `cluster` (the anchor's key is not kept: install has no use for it). */
export async function createIssuerPem(trustDomain: string, cluster: string): Promise<IssuerPem> {
  const anchor = await createTrustAnchor({ trustDomain });
  const issuer = await createIssuer(anchor, { trustDomain, cluster });
  return { trustAnchors: certificatesPem([anchor.certificate]), issuerCert: certificatesPem([issuer.certificate]), issuerKey: await privateKeyPem(issuer.signingKey) };
}

export interface ServingPem {
  /** The self-signed serving certificate, which is also the webhook's caBundle. */
  cert: string;
  key: string;
}

const SERVING_LIFETIME_MS = 365 * 86_400_000;

/** A self-signed serving certificate for a Service's in-cluster names (`<svc>.<ns>.svc`), as Linkerd's injector has, and any `ips`. */
export async function createServingPem(service: string, namespace: string, options: { ips?: string[]; now?: Date } = {}): Promise<ServingPem> {
  const now = options.now ?? new Date();
  const keys = await generateKeyPair();
  const dns = [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  const name: x509.JsonName = [{ CN: [dns[0]!] }];
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: name,
    issuer: name,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + SERVING_LIFETIME_MS),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([...dns.map((value) => ({ type: 'dns' as const, value })), ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value }))]),
    ],
  });
  return { cert: certificatesPem([cert]), key: await privateKeyPem(keys.privateKey) };
}
