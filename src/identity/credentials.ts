// Workload credentials: how a workload proves to its cluster's CA which service account it runs as.
//
// The local runtime gives each pod a bootstrap token: a JWT signed with HMAC-SHA256 (token.ts)
// under a secret key the cluster's control plane keeps, bound to the cluster, namespace, service
// account and pod, with an audience and an expiry. On Kubernetes, a verifier that sends
// service-account tokens to the TokenReview API implements the same CredentialVerifier.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDns1123Label, isDns1123Subdomain } from '../api/names.js';
import type { WorkloadName } from './spiffe.js';
import { MIN_TOKEN_KEY_BYTES, requireTokenKey, SignedToken, signToken, TokenRejected, type TokenReader } from './token.js';

/** The audience a credential must name to be accepted by Strait's CA (as Linkerd's identity.l5d.io). */
export const IDENTITY_AUDIENCE = 'identity.strait.dev';
export const DEFAULT_TOKEN_LIFETIME_MS = 24 * 60 * 60_000;
/** Tolerated clock difference when checking exp and nbf. */
const LEEWAY_S = 60;

/** Who a verified credential says the caller is. */
export interface VerifiedCredential extends WorkloadName {
  cluster?: string;
  pod?: string;
}

/** Checks a platform credential. Implementations: bootstrap tokens (local runtime), TokenReview (Kubernetes). */
export interface CredentialVerifier {
  /** Resolves to the caller's identity or rejects with a CredentialRejected. */
  verify(token: string): Promise<VerifiedCredential>;
}

export type CredentialRejection = 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'wrong-audience' | 'wrong-cluster' | 'invalid-claims';

export class CredentialRejected extends TokenRejected<CredentialRejection> {
  override name = 'CredentialRejected';
}

const READER: TokenReader<CredentialRejected> = { what: 'the token', malformed: (message) => new CredentialRejected('malformed', message) };

export interface BootstrapTokenClaims extends WorkloadName {
  cluster: string;
  pod?: string;
}

/** Claims as they travel in the token; `sub` is the Kubernetes user name of the service account. */
interface TokenPayload {
  iss: string;
  sub: string;
  aud: string[];
  iat: number;
  nbf: number;
  exp: number;
  'strait.dev': { cluster: string; namespace: string; serviceAccount: string; pod?: string };
}

function issuerFor(cluster: string): string {
  return `strait://${cluster}/control-plane`;
}

function serviceAccountUser(w: WorkloadName): string {
  return `system:serviceaccount:${w.namespace}:${w.serviceAccount}`;
}

function requireKey(key: Buffer): void {
  requireTokenKey(key, 'a token signing key');
}

/** Mints a bootstrap token for one pod. */
export function mintBootstrapToken(
  key: Buffer,
  claims: BootstrapTokenClaims,
  options: { lifetimeMs?: number; audience?: string; now?: Date } = {},
): string {
  requireKey(key);
  if (!isDns1123Label(claims.namespace)) throw new Error(`namespace "${claims.namespace}" is not a valid DNS-1123 label`);
  if (!isDns1123Subdomain(claims.serviceAccount)) throw new Error(`service account "${claims.serviceAccount}" is not a valid DNS-1123 subdomain`);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const payload: TokenPayload = {
    iss: issuerFor(claims.cluster),
    sub: serviceAccountUser(claims),
    aud: [options.audience ?? IDENTITY_AUDIENCE],
    iat: now,
    nbf: now,
    exp: now + Math.ceil((options.lifetimeMs ?? DEFAULT_TOKEN_LIFETIME_MS) / 1000),
    'strait.dev': {
      cluster: claims.cluster,
      namespace: claims.namespace,
      serviceAccount: claims.serviceAccount,
      ...(claims.pod === undefined ? {} : { pod: claims.pod }),
    },
  };
  return signToken(key, payload);
}

/** Verifies bootstrap tokens minted for one cluster with its key. */
export class BootstrapTokenVerifier implements CredentialVerifier {
  private readonly key: Buffer;
  private readonly cluster: string;
  private readonly audience: string;
  private readonly now: () => Date;

  constructor(options: { key: Buffer; cluster: string; audience?: string; now?: () => Date }) {
    requireKey(options.key);
    this.key = options.key;
    this.cluster = options.cluster;
    this.audience = options.audience ?? IDENTITY_AUDIENCE;
    this.now = options.now ?? (() => new Date());
  }

  verify(token: string): Promise<VerifiedCredential> {
    return Promise.resolve().then(() => this.verifySync(token));
  }

  private verifySync(token: string): VerifiedCredential {
    const signed = SignedToken.parse(token, READER);
    if (!signed.signedWith(this.key)) {
      throw new CredentialRejected('bad-signature', "the token's signature does not verify: it was altered or not minted by this cluster");
    }
    const p = signed.payload() as Partial<TokenPayload>;
    const s = p['strait.dev'];
    if (
      typeof p.exp !== 'number' ||
      typeof p.nbf !== 'number' ||
      !Array.isArray(p.aud) ||
      typeof s !== 'object' ||
      typeof s.namespace !== 'string' ||
      typeof s.serviceAccount !== 'string' ||
      typeof s.cluster !== 'string' ||
      !isDns1123Label(s.namespace) ||
      !isDns1123Subdomain(s.serviceAccount) ||
      p.sub !== serviceAccountUser(s)
    ) {
      throw new CredentialRejected('invalid-claims', 'the token lacks valid exp, nbf, aud, sub or strait.dev claims');
    }
    const now = this.now().getTime() / 1000;
    if (now > p.exp + LEEWAY_S) throw new CredentialRejected('expired', `the token expired at ${new Date(p.exp * 1000).toISOString()}`);
    if (now < p.nbf - LEEWAY_S) throw new CredentialRejected('not-yet-valid', `the token is not valid before ${new Date(p.nbf * 1000).toISOString()}`);
    if (!p.aud.includes(this.audience)) {
      throw new CredentialRejected('wrong-audience', `the token is for ${JSON.stringify(p.aud)}, not for ${this.audience}`);
    }
    if (s.cluster !== this.cluster || p.iss !== issuerFor(this.cluster)) {
      throw new CredentialRejected('wrong-cluster', `the token was minted for cluster ${s.cluster}, not ${this.cluster}`);
    }
    return { cluster: s.cluster, namespace: s.namespace, serviceAccount: s.serviceAccount, ...(s.pod === undefined ? {} : { pod: s.pod }) };
  }
}

/** A fresh random key for signing a cluster's bootstrap tokens. */
export function generateTokenKey(): Buffer {
  return randomBytes(MIN_TOKEN_KEY_BYTES);
}

/** The cluster's token key from `file`, created (mode 0600) the first time. */
export function loadOrCreateTokenKey(file: string): Buffer {
  try {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    requireKey(key);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: not a usable token key: ${(err as Error).message}`);
  }
  const key = generateTokenKey();
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, key.toString('base64') + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return key;
}
