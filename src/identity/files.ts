// Mesh PKI on disk: writing what `strait certs create` makes, reading bring-your-own material
// (step's root-ca/intermediate-ca output, Istio's cacerts), and the PKI a state directory keeps.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesPem, PkiError, readCertificates, readPrivateKey } from './pem.js';
import {
  checkIssuer,
  checkTrustAnchors,
  createIssuer,
  createTrustAnchor,
  type Issuer,
  type SigningCa,
  type SourcedCertificate,
} from './pki.js';
import { privateKeyPem, x509 } from './x509.js';

/** File names a user can tell apart: the trust anchor, and an issuer per cluster (or one shared). */
export const PKI_FILES = {
  anchorCert: 'trust-anchor.crt',
  anchorKey: 'trust-anchor.key',
  issuerCert: (cluster?: string) => (cluster === undefined ? 'issuer.crt' : `issuer-${cluster}.crt`),
  issuerKey: (cluster?: string) => (cluster === undefined ? 'issuer.key' : `issuer-${cluster}.key`),
};

/** Istio's cacerts file names (Makefile.selfsigned.mk, the cacerts secret). */
export const ISTIO_CACERTS = { root: 'root-cert.pem', cert: 'ca-cert.pem', key: 'ca-key.pem', chain: 'cert-chain.pem' };

function sourced(certs: x509.X509Certificate[], file: string): SourcedCertificate[] {
  return certs.map((cert, i) => ({ cert, source: certs.length > 1 ? `${file} (certificate #${i + 1})` : file }));
}

/** Writes atomically (a crash never leaves half a key) with the given mode; keys get 0600. */
function writeFileAtomic(path: string, content: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

async function writeCa(dir: string, certFile: string, keyFile: string, ca: SigningCa): Promise<string[]> {
  const cert = join(dir, certFile);
  const key = join(dir, keyFile);
  writeFileAtomic(key, await privateKeyPem(ca.signingKey), 0o600);
  writeFileAtomic(cert, certificatesPem([ca.certificate]), 0o644);
  return [cert, key];
}

export interface MeshPkiPlan {
  trustDomain: string;
  /** One issuer per cluster; ignored for names when `sharedIssuer`. */
  clusters: string[];
  sharedIssuer: boolean;
  rootLifetimeMs?: number;
  issuerLifetimeMs?: number;
}

/** Creates a trust anchor and the issuers of `plan` in `dir`; refuses to overwrite any existing file. Returns the files written. */
export async function createMeshPkiFiles(dir: string, plan: MeshPkiPlan): Promise<string[]> {
  const issuers = plan.sharedIssuer ? [undefined] : plan.clusters;
  const targets = [PKI_FILES.anchorCert, PKI_FILES.anchorKey, ...issuers.flatMap((c) => [PKI_FILES.issuerCert(c), PKI_FILES.issuerKey(c)])];
  const existing = targets.map((f) => join(dir, f)).filter((f) => existsSync(f));
  if (existing.length > 0) {
    throw new PkiError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; refusing to overwrite PKI material (choose another --out directory or remove them)`);
  }
  const anchor = await createTrustAnchor({ trustDomain: plan.trustDomain, lifetimeMs: plan.rootLifetimeMs });
  const generated = await Promise.all(
    issuers.map(async (cluster) => ({ cluster, ca: await createIssuer(anchor, { trustDomain: plan.trustDomain, cluster, lifetimeMs: plan.issuerLifetimeMs }) })),
  );
  mkdirSync(dir, { recursive: true });
  const written = await writeCa(dir, PKI_FILES.anchorCert, PKI_FILES.anchorKey, anchor);
  for (const { cluster, ca } of generated) written.push(...(await writeCa(dir, PKI_FILES.issuerCert(cluster), PKI_FILES.issuerKey(cluster), ca)));
  return written;
}

/** The trust anchors in a bundle file, each checked (self-signed CA, valid, strong key). */
export async function readTrustBundle(file: string): Promise<x509.X509Certificate[]> {
  const anchors = sourced(readCertificates(file), file);
  await checkTrustAnchors(anchors);
  return anchors.map((a) => a.cert);
}

export interface IssuerFiles {
  /** PEM with one or more trust anchors (several while rotating). */
  trustAnchor: string;
  /** PEM with the issuer certificate, optionally followed by intermediates up to the anchor. */
  issuerCert: string;
  issuerKey: string;
}

/** Reads and checks an issuer, such as `step certificate create … --profile intermediate-ca` makes. */
export async function loadIssuerFiles(files: IssuerFiles): Promise<Issuer> {
  const anchors = sourced(readCertificates(files.trustAnchor), files.trustAnchor);
  const chain = sourced(readCertificates(files.issuerCert), files.issuerCert);
  return checkIssuer({ chain, key: readPrivateKey(files.issuerKey), keySource: files.issuerKey, anchors });
}

/** Reads and checks an Istio cacerts directory: root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem. */
export async function loadIstioCacerts(dir: string): Promise<Issuer> {
  const path = (name: string) => join(dir, name);
  const anchors = sourced(readCertificates(path(ISTIO_CACERTS.root)), path(ISTIO_CACERTS.root));
  const [caCert, ...extra] = readCertificates(path(ISTIO_CACERTS.cert));
  if (extra.length > 0) throw new PkiError(`${path(ISTIO_CACERTS.cert)} holds ${extra.length + 1} certificates; it must hold only the cluster's CA certificate`);
  const chain = sourced(readCertificates(path(ISTIO_CACERTS.chain)), path(ISTIO_CACERTS.chain));
  if (!Buffer.from(chain[0]!.cert.rawData).equals(Buffer.from(caCert!.rawData))) {
    throw new PkiError(`${path(ISTIO_CACERTS.chain)} does not begin with the certificate in ${path(ISTIO_CACERTS.cert)}`);
  }
  return checkIssuer({ chain, key: readPrivateKey(path(ISTIO_CACERTS.key)), keySource: path(ISTIO_CACERTS.key), anchors });
}

/**
 * The PKI a state directory keeps when the user brings none: a trust anchor made once, and an
 * issuer per cluster made the first time the cluster is seen, all reused afterwards.
 */
export async function ensureMeshPki(dir: string, options: { trustDomain: string; clusters: string[] }): Promise<Map<string, Issuer>> {
  const anchorCert = join(dir, PKI_FILES.anchorCert);
  const anchorKey = join(dir, PKI_FILES.anchorKey);
  if (!existsSync(anchorCert)) {
    mkdirSync(dir, { recursive: true });
    await writeCa(dir, PKI_FILES.anchorCert, PKI_FILES.anchorKey, await createTrustAnchor({ trustDomain: options.trustDomain }));
  }
  const issuers = new Map<string, Issuer>();
  let anchor: SigningCa | undefined;
  for (const cluster of options.clusters) {
    const files = { trustAnchor: anchorCert, issuerCert: join(dir, PKI_FILES.issuerCert(cluster)), issuerKey: join(dir, PKI_FILES.issuerKey(cluster)) };
    if (!existsSync(files.issuerCert)) {
      anchor ??= await loadAnchorForSigning(anchorCert, anchorKey);
      await writeCa(dir, PKI_FILES.issuerCert(cluster), PKI_FILES.issuerKey(cluster), await createIssuer(anchor, { trustDomain: options.trustDomain, cluster }));
    }
    issuers.set(cluster, await loadIssuerFiles(files));
  }
  return issuers;
}

/** The anchor with its key, checked to belong together, for making a new issuer. */
async function loadAnchorForSigning(certFile: string, keyFile: string): Promise<SigningCa> {
  if (!existsSync(keyFile)) throw new PkiError(`${keyFile} is missing, so no issuer can be made under the trust anchor ${certFile}`);
  const anchors = sourced(readCertificates(certFile), certFile);
  return checkIssuer({ chain: anchors.slice(0, 1), key: readPrivateKey(keyFile), keySource: keyFile, anchors });
}
