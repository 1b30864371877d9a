// Link credentials: what lets another cluster read this cluster's mesh API, and nothing else.
//
// A credential is a JWT signed with HMAC-SHA256 (identity/token.ts) under a key only this cluster's
// control plane holds (kept like the identity token key), naming this cluster, the cluster it was minted
// for, the audience `mesh.strait.dev` and a random id. This cluster also records every credential
// it minted, as a Secret in strait-system named `link-credential-<id>` (type
// `strait.dev/link-grant`, no secret data: the token itself is not kept here) that says whom it is
// for, when it expires, and which services it may see. Revoking deletes the record, and a
// credential without its record is refused, however valid its signature — so `strait unlink`
// takes access away at once, as deleting Linkerd's service-account token does.
import { randomBytes } from 'node:crypto';
import type { Secret } from '../../api/kinds/secret.js';
import { MULTICLUSTER_NAMESPACE } from '../../api/kinds/strait.js';
import { isDns1123Label } from '../../api/names.js';
import type { LabelSelector } from '../../api/types.js';
import { requireTokenKey, SignedToken, signToken, TokenRejected, type TokenReader } from '../../identity/token.js';
import type { Store } from '../../store/store.js';

export const MESH_API_AUDIENCE = 'mesh.strait.dev';
/** A year: links are long-lived; `strait link` again mints a fresh one (and revokes the old). */
export const DEFAULT_LINK_CREDENTIAL_LIFETIME_MS = 365 * 24 * 60 * 60_000;
export const GRANT_TYPE = 'strait.dev/link-grant';
/** On a grant record: the cluster the credential was minted for. */
export const LINKED_CLUSTER_LABEL = 'strait.dev/linked-cluster';
const GRANT_ANNOTATIONS = { expires: 'strait.dev/expires', selector: 'strait.dev/export-selector' } as const;

export type LinkCredentialRejection = 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'wrong-audience' | 'wrong-cluster' | 'revoked';

export class LinkCredentialRejected extends TokenRejected<LinkCredentialRejection> {
  override name = 'LinkCredentialRejected';
}

const READER: TokenReader<LinkCredentialRejected> = { what: 'the link credential', malformed: (message) => new LinkCredentialRejected('malformed', message) };

/** What a verified credential says. */
export interface LinkCredentialClaims {
  /** The cluster that minted it: the one whose mesh API it opens. */
  cluster: string;
  /** The cluster it was minted for. */
  consumer: string;
  id: string;
  expiresAt: Date;
}

/** A credential's record in the minting cluster. */
export interface LinkGrant {
  id: string;
  consumer: string;
  expiresAt: Date;
  /** The services the credential may see; absent: the exported ones (by their export labels). */
  selector?: LabelSelector;
}

interface Payload {
  iss: string;
  sub: string;
  aud: string[];
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  'strait.dev': { cluster: string; consumer: string };
}

const issuerOf = (cluster: string) => `strait://${cluster}/control-plane`;
const subjectOf = (consumer: string) => `strait://${consumer}/link`;

function requireKey(key: Buffer): void {
  requireTokenKey(key, 'a link credential key');
}

/** A fresh credential id: 16 hex digits. */
export function newCredentialId(): string {
  return randomBytes(8).toString('hex');
}

export function grantName(id: string): string {
  return `link-credential-${id}`;
}

/** Signs a credential; records nothing (see issueLinkCredential). */
export function mintLinkCredential(key: Buffer, claims: Omit<LinkCredentialClaims, 'expiresAt'>, options: { lifetimeMs?: number; now?: Date } = {}): { token: string; expiresAt: Date } {
  requireKey(key);
  for (const [what, name] of [['cluster', claims.cluster], ['consumer', claims.consumer]] as const) {
    if (!isDns1123Label(name)) throw new TypeError(`${what} "${name}" is not a valid cluster name (DNS-1123 label)`);
  }
  const lifetimeMs = options.lifetimeMs ?? DEFAULT_LINK_CREDENTIAL_LIFETIME_MS;
  if (!Number.isInteger(lifetimeMs) || lifetimeMs <= 0) throw new TypeError(`a credential lifetime must be a positive number of milliseconds, got ${lifetimeMs}`);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const exp = now + Math.ceil(lifetimeMs / 1000);
  const payload: Payload = {
    iss: issuerOf(claims.cluster),
    sub: subjectOf(claims.consumer),
    aud: [MESH_API_AUDIENCE],
    jti: claims.id,
    iat: now,
    nbf: now,
    exp,
    'strait.dev': { cluster: claims.cluster, consumer: claims.consumer },
  };
  return { token: signToken(key, payload), expiresAt: new Date(exp * 1000) };
}

/**
 * Checks a credential's form, signature, audience and time, for `cluster` (the one verifying).
 * Does not look for its record: see `LinkGrants.authorize`. Throws LinkCredentialRejected.
 */
export function verifyLinkCredential(key: Buffer, token: string, options: { cluster: string; now?: Date }): LinkCredentialClaims {
  const signed = SignedToken.parse(token, READER);
  const p = signed.payload() as Partial<Payload>;
  const s = p['strait.dev'];
  if (
    typeof p.exp !== 'number' ||
    typeof p.nbf !== 'number' ||
    typeof p.jti !== 'string' ||
    !Array.isArray(p.aud) ||
    typeof s !== 'object' ||
    typeof s.cluster !== 'string' ||
    typeof s.consumer !== 'string'
  ) {
    throw new LinkCredentialRejected('malformed', 'the link credential lacks valid exp, nbf, jti, aud or strait.dev claims');
  }
  // Named before the signature is checked (which another cluster's key cannot pass) so that the
  // refusal says what is wrong; the claim is only ever used to refuse.
  if (s.cluster !== options.cluster) {
    throw new LinkCredentialRejected('wrong-cluster', `the link credential was minted by cluster ${s.cluster} (for ${s.consumer}); this is cluster ${options.cluster}`);
  }
  if (!signed.signedWith(key)) {
    throw new LinkCredentialRejected('bad-signature', `the link credential's signature does not verify: it was altered or not minted by cluster ${options.cluster}`);
  }
  if (p.iss !== issuerOf(s.cluster) || p.sub !== subjectOf(s.consumer)) throw new LinkCredentialRejected('malformed', 'the link credential has inconsistent iss or sub claims');
  if (!p.aud.includes(MESH_API_AUDIENCE)) {
    throw new LinkCredentialRejected('wrong-audience', `the credential is for ${JSON.stringify(p.aud)}, not for the mesh API (${MESH_API_AUDIENCE})`);
  }
  // The same control plane mints and verifies, so no clock skew is tolerated.
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (now >= p.exp) throw new LinkCredentialRejected('expired', `the link credential expired at ${new Date(p.exp * 1000).toISOString()}; run strait link again for a new one`);
  if (now < p.nbf) throw new LinkCredentialRejected('not-yet-valid', `the link credential is not valid before ${new Date(p.nbf * 1000).toISOString()}`);
  return { cluster: s.cluster, consumer: s.consumer, id: p.jti, expiresAt: new Date(p.exp * 1000) };
}

/** The record of a credential, as this cluster keeps it. */
export function grantRecord(grant: LinkGrant): Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: GRANT_TYPE,
    metadata: {
      name: grantName(grant.id),
      namespace: MULTICLUSTER_NAMESPACE,
      labels: { [LINKED_CLUSTER_LABEL]: grant.consumer },
      annotations: {
        [GRANT_ANNOTATIONS.expires]: grant.expiresAt.toISOString(),
        ...(grant.selector ? { [GRANT_ANNOTATIONS.selector]: JSON.stringify(grant.selector) } : {}),
      },
    },
  };
}

/** A record read back; undefined for a Secret that is not a grant. */
export function grantOf(secret: Secret): LinkGrant | undefined {
  const consumer = secret.metadata.labels?.[LINKED_CLUSTER_LABEL];
  const expires = secret.metadata.annotations?.[GRANT_ANNOTATIONS.expires];
  const id = secret.metadata.name.startsWith('link-credential-') ? secret.metadata.name.slice('link-credential-'.length) : undefined;
  if (secret.type !== GRANT_TYPE || consumer === undefined || expires === undefined || id === undefined) return undefined;
  const selectorText = secret.metadata.annotations?.[GRANT_ANNOTATIONS.selector];
  return { id, consumer, expiresAt: new Date(expires), ...(selectorText ? { selector: JSON.parse(selectorText) as LabelSelector } : {}) };
}

export interface IssuedLinkCredential {
  token: string;
  id: string;
  consumer: string;
  expiresAt: Date;
}

/** Mints and records credentials in one cluster's store, and checks and revokes them. */
export class LinkGrants {
  constructor(
    private readonly store: Store,
    private readonly key: Buffer,
    /** The cluster whose store and key these are. */
    private readonly cluster: string,
  ) {
    requireKey(key);
  }

  /** Mints a credential for `consumer` and records it; earlier ones stay valid until revoked. */
  async issue(request: { consumer: string; selector?: LabelSelector; lifetimeMs?: number; now?: Date }): Promise<IssuedLinkCredential> {
    if (request.consumer === this.cluster) throw new TypeError(`cluster ${this.cluster} cannot mint a link credential for itself`);
    const id = newCredentialId();
    const { token, expiresAt } = mintLinkCredential(this.key, { cluster: this.cluster, consumer: request.consumer, id }, request);
    await this.store.apply([grantRecord({ id, consumer: request.consumer, expiresAt, selector: request.selector })]);
    return { token, id, consumer: request.consumer, expiresAt };
  }

  /**
   * Revokes the credentials minted for `consumer`: only the one with id `only`, or all but the one
   * with id `except`, or all. Returns the ids revoked.
   */
  async revoke(request: { consumer: string; only?: string; except?: string }): Promise<string[]> {
    const records = await this.records(request.consumer);
    const doomed = records.filter((g) => (request.only === undefined || g.id === request.only) && g.id !== request.except);
    if (doomed.length === 0) return [];
    await this.store.delete(doomed.map((g) => ({ kind: 'Secret', namespace: MULTICLUSTER_NAMESPACE, name: grantName(g.id) })));
    return doomed.map((g) => g.id);
  }

  /** The recorded credentials minted for `consumer` (every consumer when absent). */
  async records(consumer?: string): Promise<LinkGrant[]> {
    const { items } = await this.store.list('Secret', { namespace: MULTICLUSTER_NAMESPACE, labelSelector: consumer === undefined ? LINKED_CLUSTER_LABEL : `${LINKED_CLUSTER_LABEL}=${consumer}` });
    return items.map((s) => grantOf(s as Secret)).filter((g): g is LinkGrant => g !== undefined);
  }

  /** A credential's claims and record; LinkCredentialRejected when it is not (or no longer) good. */
  async authorize(token: string, now?: Date): Promise<{ claims: LinkCredentialClaims; grant: LinkGrant }> {
    const claims = verifyLinkCredential(this.key, token, { cluster: this.cluster, now });
    const record = await this.store.get({ kind: 'Secret', namespace: MULTICLUSTER_NAMESPACE, name: grantName(claims.id) });
    const grant = record && grantOf(record as Secret);
    if (!grant || grant.consumer !== claims.consumer) {
      throw new LinkCredentialRejected('revoked', `the link credential ${claims.id} for cluster ${claims.consumer} was revoked (strait unlink); run strait link again for a new one`);
    }
    return { claims, grant };
  }
}
