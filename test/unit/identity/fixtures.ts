// Test material made by the real `openssl`, reproducing what users bring: `step certificate create
// … --profile root-ca / intermediate-ca` output, and Istio's cacerts from Makefile.selfsigned.mk.
// Also small helpers shared by the identity tests.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { controlPlaneIdentity, createControlPlaneServer, registerIdentityService, type IdentityEvent } from '../../../src/control/identity-service.js';
import { CertificateAuthority } from '../../../src/identity/ca.js';
import { caTransport, connectCertifier, WorkloadIdentity, type WorkloadIdentityOptions } from '../../../src/identity/client.js';
import { BootstrapTokenVerifier, generateTokenKey, mintBootstrapToken } from '../../../src/identity/credentials.js';
import { certificatesPem } from '../../../src/identity/pem.js';
import { createIssuer, createTrustAnchor, issuerOf, type Issuer, type SigningCa } from '../../../src/identity/pki.js';
import { controlPlaneSpiffeId, spiffeId, type WorkloadName } from '../../../src/identity/spiffe.js';
import { secureContextOptions, type TlsIdentity, type TlsMaterial } from '../../../src/identity/tls.js';
import { ECDSA_P256, generateKeyPair, privateKeyPem, x509 } from '../../../src/identity/x509.js';

/** Runs openssl in `cwd`; a failure throws with openssl's own message. */
export function openssl(cwd: string, args: string[]): string {
  try {
    return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}${e.message}`);
  }
}

export function tempDir(prefix = 'strait-identity-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type KeyKind = 'ec-p256' | 'ec-p384' | 'rsa-1024' | 'rsa-2048' | 'rsa-4096';

/** A private key in the form each tool writes: step and `openssl ecparam` write SEC1 "EC PRIVATE KEY". */
export function makeKey(dir: string, file: string, kind: KeyKind = 'ec-p256'): string {
  if (kind.startsWith('ec-')) {
    openssl(dir, ['ecparam', '-name', kind === 'ec-p256' ? 'prime256v1' : 'secp384r1', '-genkey', '-noout', '-out', file]);
  } else {
    openssl(dir, ['genrsa', '-out', file, kind.slice(4)]);
  }
  return join(dir, file);
}

interface CaFiles {
  cert: string;
  key: string;
}

/** What `step certificate create root.linkerd.cluster.local ca.crt ca.key --profile root-ca --no-password --insecure` writes. */
export function stepRootCa(dir: string, options: { name?: string; key?: KeyKind; cn?: string } = {}): CaFiles {
  const name = options.name ?? 'ca';
  writeFileSync(
    join(dir, `${name}.cnf`),
    `[req]\ndistinguished_name = dn\n[dn]\n[v3]\nbasicConstraints = critical, CA:TRUE, pathlen:1\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n`,
  );
  const key = makeKey(dir, `${name}.key`, options.key);
  openssl(dir, [
    'req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '3650',
    '-subj', `/CN=${options.cn ?? 'root.linkerd.cluster.local'}`, '-config', `${name}.cnf`, '-extensions', 'v3', '-out', `${name}.crt`,
  ]);
  return { cert: join(dir, `${name}.crt`), key };
}

/**
 * What `step certificate create identity.linkerd.cluster.local issuer.crt issuer.key --profile
 * intermediate-ca --not-after 8760h --no-password --insecure --ca ca.crt --ca-key ca.key` writes;
 * `extensions` replaces the profile's to make broken issuers.
 */
export function stepIntermediateCa(
  dir: string,
  ca: CaFiles,
  options: { name?: string; key?: KeyKind; days?: number; extensions?: string } = {},
): CaFiles {
  const name = options.name ?? 'issuer';
  const extensions = options.extensions ?? 'basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid';
  writeFileSync(join(dir, `${name}.ext`), extensions + '\n');
  const key = makeKey(dir, `${name}.key`, options.key);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', '/CN=identity.linkerd.cluster.local', '-out', `${name}.csr`]);
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-sha256',
    '-days', String(options.days ?? 365), '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ]);
  return { cert: join(dir, `${name}.crt`), key };
}

/**
 * Istio's cacerts for one cluster as tools/certs/Makefile.selfsigned.mk makes them: an RSA root
 * (root-ca.conf; the Makefile's ROOTCA_KEYSZ defaults to 4096, 2048 keeps tests fast and takes the
 * same path), and a cluster CA (intermediate.conf) whose key is `intermediateKey` — Istio's
 * default is RSA; Strait needs ECDSA P-256 there.
 */
export function istioCacerts(dir: string, intermediateKey: KeyKind = 'ec-p256', rootKey: KeyKind = 'rsa-2048'): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'root-ca.conf'),
    [
      '[ req ]', 'encrypt_key = no', 'prompt = no', 'utf8 = yes', 'default_md = sha256', 'default_bits = 4096',
      'req_extensions = req_ext', 'x509_extensions = req_ext', 'distinguished_name = req_dn',
      '[ req_ext ]', 'subjectKeyIdentifier = hash', 'basicConstraints = critical, CA:true',
      'keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign',
      '[ req_dn ]', 'O = Istio', 'CN = Root CA', '',
    ].join('\n'),
  );
  makeKey(dir, 'root-key.pem', rootKey);
  openssl(dir, ['req', '-sha256', '-new', '-key', 'root-key.pem', '-config', 'root-ca.conf', '-out', 'root-cert.csr']);
  openssl(dir, ['x509', '-req', '-sha256', '-days', '3650', '-signkey', 'root-key.pem', '-extensions', 'req_ext', '-extfile', 'root-ca.conf', '-in', 'root-cert.csr', '-out', 'root-cert.pem']);
  const cluster = join(dir, 'cluster1');
  mkdirSync(cluster, { recursive: true });
  writeFileSync(
    join(cluster, 'intermediate.conf'),
    [
      '[ req ]', 'encrypt_key = no', 'prompt = no', 'utf8 = yes', 'default_md = sha256', 'default_bits = 4096',
      'req_extensions = req_ext', 'x509_extensions = req_ext', 'distinguished_name = req_dn',
      '[ req_ext ]', 'subjectKeyIdentifier = hash', 'basicConstraints = critical, CA:true, pathlen:0',
      'keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign', 'subjectAltName=@san',
      '[ san ]', 'DNS.1 = istiod.istio-system.svc',
      '[ req_dn ]', 'O = Istio', 'CN = Intermediate CA', 'L = cluster1', '',
    ].join('\n'),
  );
  makeKey(cluster, 'ca-key.pem', intermediateKey);
  openssl(cluster, ['req', '-sha256', '-new', '-config', 'intermediate.conf', '-key', 'ca-key.pem', '-out', 'cluster-ca.csr']);
  openssl(cluster, [
    'x509', '-req', '-sha256', '-days', '730', '-CA', '../root-cert.pem', '-CAkey', '../root-key.pem', '-CAcreateserial',
    '-extensions', 'req_ext', '-extfile', 'intermediate.conf', '-in', 'cluster-ca.csr', '-out', 'ca-cert.pem',
  ]);
  writeFileSync(join(cluster, 'cert-chain.pem'), readFileSync(join(cluster, 'ca-cert.pem'), 'utf8') + readFileSync(join(dir, 'root-cert.pem'), 'utf8'));
  copyFileSync(join(dir, 'root-cert.pem'), join(cluster, 'root-cert.pem'));
  return cluster;
}

export const DAY = 86_400_000;

/** A fresh mesh PKI in memory: one anchor and an issuer per named cluster. */
export async function meshPki(
  clusters: string[],
  trustDomain = 'cluster.local',
): Promise<{ anchor: SigningCa; issuers: Record<string, Issuer> }> {
  const anchor = await createTrustAnchor({ trustDomain });
  const issuers: Record<string, Issuer> = {};
  for (const cluster of clusters) issuers[cluster] = issuerOf(await createIssuer(anchor, { trustDomain, cluster }), [anchor.certificate]);
  return { anchor, issuers };
}

/** TLS material for `workload` signed by `ca` right now (by its clock), bypassing the client's own checks. */
export async function issueMaterial(ca: CertificateAuthority, workload: WorkloadName): Promise<TlsMaterial> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: ECDSA_P256 });
  const issued = await ca.certify(new Uint8Array(csr.rawData), workload);
  return {
    spiffeId: issued.spiffeId,
    keyPem: await privateKeyPem(keys.privateKey),
    certChainPem: certificatesPem(issued.chain),
    trustBundlePem: certificatesPem(issued.trustBundle),
  };
}

/** A TlsIdentity that never rotates, for peers with hand-made (e.g. expired) certificates. */
export function staticIdentity(material: TlsMaterial): TlsIdentity {
  const context = createSecureContext(secureContextOptions(material));
  return { material: () => material, secureContext: () => context, onRotate: () => () => {} };
}

export interface RunningControlPlane {
  baseUrl: string;
  port: number;
  ca: CertificateAuthority;
  tokenKey: Buffer;
  events: IdentityEvent[];
  token(claims: WorkloadName & { pod?: string }): string;
  /** A workload identity client asking this control plane over HTTP/2 TLS; call start(). */
  workload(name: WorkloadName, options?: Partial<WorkloadIdentityOptions>): WorkloadIdentity;
  close(): Promise<void>;
}

/** A cluster's control plane serving the identity service over real HTTP/2 TLS on 127.0.0.1. */
export async function startControlPlane(options: {
  issuer: Issuer;
  cluster: string;
  trustDomain?: string;
  leafLifetimeMs?: number;
  clockSkewMs?: number;
  port?: number;
}): Promise<RunningControlPlane> {
  const trustDomain = options.trustDomain ?? 'cluster.local';
  const ca = new CertificateAuthority({ issuer: options.issuer, trustDomain, leafLifetimeMs: options.leafLifetimeMs, clockSkewMs: options.clockSkewMs });
  const tokenKey = generateTokenKey();
  const verifier = new BootstrapTokenVerifier({ key: tokenKey, cluster: options.cluster });
  const events: IdentityEvent[] = [];
  const own = controlPlaneIdentity(ca);
  await own.start();
  const server = createControlPlaneServer(own, (router) => registerIdentityService(router, { ca, verifier, onEvent: (e) => events.push(e) }));
  const sessions = new Set<Http2Session>();
  server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `https://127.0.0.1:${port}`;
  const trustBundlePem = certificatesPem(options.issuer.trustBundle);
  const token = (claims: WorkloadName & { pod?: string }) => mintBootstrapToken(tokenKey, { cluster: options.cluster, ...claims });
  return {
    baseUrl,
    port,
    ca,
    tokenKey,
    events,
    token,
    workload(name, extra = {}) {
      const transport = caTransport({ baseUrl, trustBundlePem, serverIdentity: controlPlaneSpiffeId(trustDomain) });
      return new WorkloadIdentity({ certifier: connectCertifier(transport, () => token(name)), expectedSpiffeId: spiffeId(trustDomain, name), ...extra });
    },
    async close() {
      own.stop();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
