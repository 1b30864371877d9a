// HS256 JWTs (RFC 7519), the one way Strait's control plane mints and checks its own tokens: the
// bootstrap tokens a pod shows the CA (credentials.ts) and the link credentials another cluster
// shows the mesh API (control/mesh-api/credentials.ts). HMAC-SHA256 is enough because the control
// plane that mints a token is the one that verifies it. What a token claims, and in which order
// its checks run, is each caller's own; this module signs, splits, and checks the signature.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MIN_TOKEN_KEY_BYTES = 32;

/** A refused token: `reason` says what was wrong, the message says it in words. */
export class TokenRejected<R extends string> extends Error {
  constructor(
    readonly reason: R,
    message: string,
  ) {
    super(message);
  }
}

/** Throws unless `key` is long enough; `what` names the key ("a token signing key"). */
export function requireTokenKey(key: Buffer, what: string): void {
  if (key.length < MIN_TOKEN_KEY_BYTES) throw new Error(`${what} must be at least ${MIN_TOKEN_KEY_BYTES} bytes (got ${key.length})`);
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function hmac(key: Buffer, signingInput: string): Buffer {
  return createHmac('sha256', key).update(signingInput).digest();
}

/** A signed token carrying `payload`. */
export function signToken(key: Buffer, payload: object): string {
  const signingInput = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
  return `${signingInput}.${b64url(hmac(key, signingInput))}`;
}

/** What a refusal of a malformed token is made of: the caller's rejection class and how it names the token ("the token"). */
export interface TokenReader<E extends Error> {
  what: string;
  malformed(message: string): E;
}

/** A token split into its parts, its header checked to be HS256; nothing is trusted before `signedWith`. */
export class SignedToken {
  private constructor(
    private readonly signingInput: string,
    private readonly payloadPart: string,
    private readonly signature: Buffer,
    private readonly reader: TokenReader<Error>,
  ) {}

  /** Throws the reader's malformed error unless `token` is three base64url parts with an HS256 header. */
  static parse(token: string, reader: TokenReader<Error>): SignedToken {
    const parts = token.split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
      throw reader.malformed(`${reader.what} is not a JWT (three base64url parts separated by dots)`);
    }
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodePart(headerPart, 'header', reader) as { alg?: unknown };
    // Checking alg before the signature keeps "alg": "none" and algorithm-confusion tokens out.
    if (header.alg !== 'HS256') throw reader.malformed(`${reader.what}'s algorithm is ${JSON.stringify(header.alg)}, not HS256`);
    return new SignedToken(`${headerPart}.${payloadPart}`, payloadPart, Buffer.from(signaturePart, 'base64url'), reader);
  }

  /** The payload, a JSON object (its claims not yet checked). */
  payload(): Record<string, unknown> {
    return decodePart(this.payloadPart, 'payload', this.reader);
  }

  /** Whether `key` made the signature (compared in constant time). */
  signedWith(key: Buffer): boolean {
    const expected = hmac(key, this.signingInput);
    return this.signature.length === expected.length && timingSafeEqual(this.signature, expected);
  }
}

function decodePart(part: string, what: string, reader: TokenReader<Error>): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw reader.malformed(`${reader.what}'s ${what} is not a JSON object`);
}
