// The mesh PKI: a trust anchor (root) shared by every cluster, an issuer (intermediate CA) per
// cluster or one shared, and the checks that bring-your-own material must pass.
//
// Key policy. Strait signs with ECDSA P-256, so an issuer's key must be ECDSA P-256 and so must
// every workload key. A trust anchor (and any intermediate between an issuer and its anchor) is
// only ever used to verify, so it may also be ECDSA P-384/P-521 or RSA of at least 2048 bits:
// that admits Istio's `cacerts` made by its Makefile.selfsigned.mk, whose root is RSA 4096 — but
// its ca-key.pem must then be made with ECDSA P-256, since Strait signs workload certificates with it.
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { PkiError } from './pem.js';
import { ECDSA_P256, ecdsaSigningKey, generateKeyPair, x509, type CryptoKey } from './x509.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
export const DEFAULT_ROOT_LIFETIME_MS = 3650 * DAY;
export const DEFAULT_ISSUER_LIFETIME_MS = 365 * DAY;
/** Certificates start this much in the past so that a peer whose clock is behind accepts them (as `step` does). */
export const DEFAULT_CLOCK_SKEW_MS = MINUTE;

/** A certificate with where it came from, so errors can name the file. */
export interface SourcedCertificate {
  cert: x509.X509Certificate;
  source: string;
}

/** A CA certificate with the private key that signs under it. */
export interface SigningCa {
  certificate: x509.X509Certificate;
  signingKey: CryptoKey;
}

/** What a cluster's CA needs: the issuing certificate and key, and the anchors peers are verified under. */
export interface Issuer extends SigningCa {
  /** Certificates between the issuer and a trust anchor (an Istio cert-chain.pem may have some); usually none. */
  intermediates: x509.X509Certificate[];
  /** Every trusted anchor; several while an anchor is being rotated. */
  trustBundle: x509.X509Certificate[];
}

/** "ECDSA P-256", "RSA 4096", "ED25519", … */
export function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = details.namedCurve ?? 'unknown curve';
      return `ECDSA ${CURVES[curve] ?? curve}`;
    }
    case 'rsa':
    case 'rsa-pss':
      return `${key.asymmetricKeyType.toUpperCase()} ${details.modulusLength ?? '?'}`;
    default:
      return (key.asymmetricKeyType ?? 'unknown').toUpperCase();
  }
}

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The public key of a certificate or CSR as a Node KeyObject. */
export function publicKeyOf(holder: x509.IPublicKeyContainer): KeyObject {
  return createPublicKey({ key: Buffer.from(holder.publicKey.rawData), format: 'der', type: 'spki' });
}

function isEcdsaP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** Throws unless the key is ECDSA P-256, the only kind Strait signs with or issues for. */
export function requireEcdsaP256(key: KeyObject, what: string): void {
  if (!isEcdsaP256(key)) throw new PkiError(`${what} is ${describeKey(key)}; Strait requires ECDSA P-256 here`);
}

/** Throws on keys too weak to verify with: RSA under 2048 bits, unusual curves, DSA, … */
function requireStrongVerificationKey(key: KeyObject, what: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  const ok =
    (key.asymmetricKeyType === 'ec' && curve !== undefined && curve in CURVES) ||
    ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && bits >= 2048);
  if (!ok) {
    throw new PkiError(`${what} is ${describeKey(key)}, which is too weak or unsupported; use ECDSA P-256 (or RSA of at least 2048 bits for a root)`);
  }
}

function label(c: SourcedCertificate): string {
  return `${c.source} ('${c.cert.subject || '(empty subject)'}')`;
}

/** SHA-256 as colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it; give a certificate's DER (rawData). */
export function fingerprintSha256(der: ArrayBuffer | Uint8Array): string {
  return createHash('sha256')
    .update(der instanceof Uint8Array ? der : new Uint8Array(der))
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
}

function sameCertificate(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

async function signedBy(child: x509.X509Certificate, parent: x509.X509Certificate): Promise<boolean> {
  try {
    return await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
  } catch {
    return false; // a key of another algorithm cannot have made the signature
  }
}

function requireValidAt(c: SourcedCertificate, at: Date): void {
  if (at < c.cert.notBefore) throw new PkiError(`${label(c)} is not valid until ${c.cert.notBefore.toISOString()}`);
  if (at > c.cert.notAfter) throw new PkiError(`${label(c)} expired on ${c.cert.notAfter.toISOString()}`);
}

/** Throws unless the certificate may sign certificates: basicConstraints CA:TRUE and, if keyUsage is present, keyCertSign. */
function requireCa(c: SourcedCertificate, role: string): void {
  const bc = c.cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) {
    throw new PkiError(`${label(c)} is not a CA certificate (no basicConstraints CA:TRUE), so it cannot be ${role}`);
  }
  const ku = c.cert.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new PkiError(`${label(c)} has keyUsage without keyCertSign, so it cannot be ${role}`);
  }
}

function requireStrongSignature(c: SourcedCertificate): void {
  const hash = (c.cert.signatureAlgorithm as { hash?: { name?: string } }).hash?.name;
  if (hash === 'SHA-1' || hash === 'MD5') throw new PkiError(`${label(c)} is signed with ${hash}, which is too weak; re-issue it with SHA-256`);
}

/** Checks that each anchor is a valid, self-signed CA with a strong key. */
export async function checkTrustAnchors(anchors: SourcedCertificate[], at = new Date()): Promise<void> {
  if (anchors.length === 0) throw new PkiError('the trust bundle holds no unexpired trust anchor');
  for (const a of anchors) {
    requireCa(a, 'a trust anchor');
    requireValidAt(a, at);
    requireStrongVerificationKey(publicKeyOf(a.cert), `the key of trust anchor ${label(a)}`);
    if (a.cert.subject !== a.cert.issuer || !(await signedBy(a.cert, a.cert))) {
      throw new PkiError(`${label(a)} is not self-signed (issued by '${a.cert.issuer}'); a trust anchor must be a root certificate`);
    }
  }
}

/**
 * Checks that `chain[0]` is vouched for by `chain[1..]` and ends under one of `anchors` (which the
 * caller has checked): signatures, validity at `at`, CA flags and path lengths. `chain[0]` is a
 * leaf when `endEntity`, else a CA that will issue leaves.
 */
export async function verifyChain(chain: SourcedCertificate[], anchors: SourcedCertificate[], options: { at?: Date; endEntity: boolean }): Promise<void> {
  const at = options.at ?? new Date();
  const path = chain.filter((c) => !anchors.some((a) => sameCertificate(a.cert, c.cert)));
  if (path.length === 0) return; // the "chain" is an anchor itself
  for (const [i, c] of path.entries()) {
    requireValidAt(c, at);
    requireStrongSignature(c);
    if (i > 0) {
      requireCa(c, `the issuer of ${label(path[i - 1]!)}`);
      requireStrongVerificationKey(publicKeyOf(c.cert), `the key of ${label(c)}`);
    }
    const next = path[i + 1];
    if (next && !(await signedBy(c.cert, next.cert))) {
      throw new PkiError(`${label(c)} is not signed by the next certificate in the chain, ${label(next)}`);
    }
  }
  const top = path[path.length - 1]!;
  let anchor: SourcedCertificate | undefined;
  for (const a of anchors) {
    if (await signedBy(top.cert, a.cert)) {
      anchor = a;
      break;
    }
  }
  if (!anchor) {
    const names = anchors.map((a) => `'${a.cert.subject}'`).join(', ');
    throw new PkiError(`${label(top)} does not chain to the trust anchor${anchors.length > 1 ? 's' : ''} ${names}: it was issued by '${top.cert.issuer}'`);
  }
  // pathLenConstraint: how many CA certificates may follow a CA on the way down to a leaf.
  const caCount = path.length - (options.endEntity ? 1 : 0);
  const fromTheTop = [anchor, ...[...path].reverse()];
  for (const [depth, ca] of fromTheTop.entries()) {
    const limit = ca.cert.getExtension(x509.BasicConstraintsExtension)?.pathLength;
    const following = caCount - depth;
    if (limit !== undefined && following > limit) {
      throw new PkiError(`${label(ca)} allows ${limit} CA certificate(s) below it (pathlen ${limit}) but the chain has ${following}`);
    }
  }
}

/** Checks bring-your-own issuer material and assembles it: CA, ECDSA P-256, key matches, chains to an anchor. */
export async function checkIssuer(input: {
  chain: SourcedCertificate[];
  key: KeyObject;
  keySource: string;
  anchors: SourcedCertificate[];
  at?: Date;
}): Promise<Issuer> {
  const { chain, key, keySource, anchors } = input;
  const issuer = chain[0];
  if (!issuer) throw new PkiError('no issuer certificate given');
  await checkTrustAnchors(anchors, input.at);
  requireCa(issuer, 'an issuer');
  requireEcdsaP256(publicKeyOf(issuer.cert), `the key of issuer certificate ${label(issuer)}`);
  requireEcdsaP256(key, `the issuer key ${keySource}`);
  const certKey = Buffer.from(issuer.cert.publicKey.rawData);
  const keysPublic = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!certKey.equals(keysPublic)) {
    throw new PkiError(`the issuer key ${keySource} does not match the issuer certificate ${label(issuer)} (their public keys differ)`);
  }
  await verifyChain(chain, anchors, { at: input.at, endEntity: false });
  return {
    certificate: issuer.cert,
    intermediates: chain.slice(1).filter((c) => !anchors.some((a) => sameCertificate(a.cert, c.cert))).map((c) => c.cert),
    signingKey: await ecdsaSigningKey(key),
    trustBundle: anchors.map((a) => a.cert),
  };
}

/** A random positive 128-bit serial number, as hex. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

async function authorityKeyId(parent: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = parent.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(parent.publicKey);
}

const CA_KEY_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

export interface CaOptions {
  trustDomain: string;
  lifetimeMs?: number;
  now?: Date;
}

/** A new trust anchor: a self-signed ECDSA P-256 root, CA with pathlen 1 (as `step --profile root-ca` makes). Its key is extractable, to be written to a file. */
export async function createTrustAnchor(options: CaOptions): Promise<SigningCa> {
  const now = options.now ?? new Date();
  const keys = await generateKeyPair();
  const name: x509.JsonName = [{ O: [options.trustDomain] }, { CN: ['Strait trust anchor'] }];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: name,
    issuer: name,
    notBefore: new Date(now.getTime() - DEFAULT_CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + (options.lifetimeMs ?? DEFAULT_ROOT_LIFETIME_MS)),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificate, signingKey: keys.privateKey };
}

/**
 * A new issuer under `anchor`: an ECDSA P-256 intermediate CA with pathlen 0 (as `step --profile
 * intermediate-ca` makes), named for its cluster, or "shared" when `cluster` is undefined. It
 * never outlives its anchor.
 */
export async function createIssuer(anchor: SigningCa, options: CaOptions & { cluster?: string }): Promise<SigningCa> {
  const now = options.now ?? new Date();
  const keys = await generateKeyPair();
  const cn = options.cluster === undefined ? 'Strait shared issuer' : `Strait issuer for ${options.cluster}`;
  const notAfter = new Date(Math.min(now.getTime() + (options.lifetimeMs ?? DEFAULT_ISSUER_LIFETIME_MS), anchor.certificate.notAfter.getTime()));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ O: [options.trustDomain] }, { CN: [cn] }] satisfies x509.JsonName,
    issuer: anchor.certificate.subjectName,
    notBefore: new Date(now.getTime() - DEFAULT_CLOCK_SKEW_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: anchor.signingKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await authorityKeyId(anchor.certificate),
    ],
  });
  return { certificate, signingKey: keys.privateKey };
}

/** An Issuer from freshly generated material (no files involved). */
export function issuerOf(issuer: SigningCa, trustBundle: x509.X509Certificate[]): Issuer {
  return { ...issuer, intermediates: [], trustBundle };
}

export interface LeafOptions {
  issuer: Issuer;
  publicKey: x509.PublicKey;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}

/** Signs a workload certificate: empty subject, the SPIFFE ID as its only (critical) URI SAN, serverAuth and clientAuth. */
export async function signLeaf(options: LeafOptions): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [],
    issuer: options.issuer.certificate.subjectName,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: options.publicKey,
    signingKey: options.issuer.signingKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      // Critical because the subject is empty (RFC 5280 §4.2.1.6), as SPIFFE X.509-SVIDs from Istio are.
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: options.spiffeId }], true),
      await authorityKeyId(options.issuer.certificate),
    ],
  });
}

const SAN_TYPES: Record<string, string> = { url: 'URI', dns: 'DNS', ip: 'IP', email: 'email', dn: 'DirName', guid: 'GUID', upn: 'UPN', id: 'RID' };

/** A subject alternative name as openssl prints it: URI:spiffe://…, DNS:…, IP:… */
export function sanText(name: x509.GeneralName): string {
  return `${SAN_TYPES[name.type] ?? name.type}:${name.value}`;
}

/** The URI SANs of a certificate. */
export function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
}
