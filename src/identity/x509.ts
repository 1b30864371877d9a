// The one place that sets up @peculiar/x509: it needs reflect-metadata loaded before it and a
// WebCrypto provider (Node's) before first use. Everything in Strait imports `x509` from here.
import 'reflect-metadata';
import { webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export { x509 };

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** Strait's key and signature algorithm for issuers and workloads: ECDSA on P-256 with SHA-256. */
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A fresh ECDSA P-256 key pair. Extractable, because TLS and key files need the private key as PEM. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

/** The private key as PKCS#8 PEM, the form node:tls and `openssl` read. */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A signing CryptoKey for an ECDSA P-256 private key read from a file (PKCS#8 or SEC1 "EC PRIVATE KEY"). */
export async function ecdsaSigningKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign']);
}

/** DER bytes of a certificate, as a Node Buffer (what node:crypto and protobuf fields take). */
export function derOf(cert: x509.X509Certificate): Buffer {
  return Buffer.from(cert.rawData);
}
