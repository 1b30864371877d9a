// TLS policy between mesh members: TLS 1.3 only, ALPN h2 and http/1.1, and a peer is accepted when
// its chain leads to a trusted anchor (OpenSSL checks that) and its SPIFFE ID is the one expected.
// Node's default host-name check ignores URI SANs, so the identity check is written here.
import { constants } from 'node:crypto';
import type tls from 'node:tls';

export const MESH_ALPN = ['h2', 'http/1.1'];
const TLS_1_3 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

/** A workload's TLS material, all PEM. */
export interface TlsMaterial {
  spiffeId: string;
  keyPem: string;
  /** The workload's certificate first, then its issuer(s). */
  certChainPem: string;
  /** The trusted anchors peers must chain to. */
  trustBundlePem: string;
}

/** A current workload certificate that changes over time (WorkloadIdentity implements it). */
export interface TlsIdentity {
  /** The current material; throws when there is none yet. */
  material(): TlsMaterial;
  /** A SecureContext for the current material, made once per rotation. */
  secureContext(): tls.SecureContext;
  /** Calls `listener` after each new certificate; returns a function that unsubscribes. */
  onRotate(listener: () => void): () => void;
}

/** Whom a peer must be: one SPIFFE ID, any of several, or any the predicate accepts. */
export type ExpectedPeer = string | readonly string[] | ((spiffeId: string) => boolean);

export class PeerRejected extends Error {
  override name = 'PeerRejected';
}

export function secureContextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return { key: m.keyPem, cert: m.certChainPem, ca: m.trustBundlePem, ...TLS_1_3 };
}

/**
 * A server issues no session tickets: a resumed TLS session skips the client's identity check
 * (Node calls checkServerIdentity only on full handshakes), so every connection gets a full one.
 * Mesh clients keep connections alive, so the cost is per connection, not per request.
 */
function serverContextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return { ...secureContextOptions(m), secureOptions: constants.SSL_OP_NO_TICKET };
}

export type ClientCertPolicy = 'require' | 'request' | 'none';

/**
 * Options for a TLS (or HTTP/2 secure) server presenting `identity`. `require` (the default)
 * refuses clients without a chain to a trusted anchor; `request` lets them in unauthorized, to be
 * judged per request (peerSpiffeId is then undefined for them). Pair with followRotation.
 */
export function serverTlsOptions(identity: TlsIdentity, options: { clientCert?: ClientCertPolicy; alpn?: string[] } = {}): tls.TlsOptions {
  const clientCert = options.clientCert ?? 'require';
  return {
    ...serverContextOptions(identity.material()),
    requestCert: clientCert !== 'none',
    rejectUnauthorized: clientCert === 'require',
    ALPNProtocols: options.alpn ?? MESH_ALPN,
  };
}

/** Makes `server` present each new certificate to new connections; connections already open continue. */
export function followRotation(server: tls.Server, identity: TlsIdentity): () => void {
  const unsubscribe = identity.onRotate(() => server.setSecureContext(serverContextOptions(identity.material())));
  server.once('close', unsubscribe);
  return unsubscribe;
}

/** Options for connecting to a mesh peer that must prove it is `expected`, presenting `identity`. */
export function clientTlsOptions(
  identity: TlsIdentity,
  expected: ExpectedPeer,
  options: { servername?: string; alpn?: string[] } = {},
): tls.ConnectionOptions {
  return {
    secureContext: identity.secureContext(),
    rejectUnauthorized: true,
    checkServerIdentity: spiffeServerCheck(expected),
    ALPNProtocols: options.alpn ?? MESH_ALPN,
    ...(options.servername === undefined ? {} : { servername: options.servername }),
  };
}

/** Options for a client that has no certificate yet (a workload asking the CA for its first one). */
export function anchorOnlyClientOptions(trustBundlePem: string, expected: ExpectedPeer): tls.ConnectionOptions {
  return { ca: trustBundlePem, ...TLS_1_3, rejectUnauthorized: true, checkServerIdentity: spiffeServerCheck(expected) };
}

/**
 * The URI SANs in Node's `subjectaltname` text ("DNS:a, URI:spiffe://…"); Node JSON-quotes a
 * value that holds a separator, so quoted values are decoded rather than split.
 */
export function uriSansOf(cert: { subjectaltname?: string }): string[] {
  const text = cert.subjectaltname ?? '';
  const uris: string[] = [];
  for (const m of text.matchAll(/(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    if (m[1] !== 'URI') continue;
    const value = m[2]!;
    uris.push(value.startsWith('"') ? (JSON.parse(value) as string) : value);
  }
  return uris;
}

/** A SPIFFE certificate carries exactly one URI SAN, its SPIFFE ID. */
function spiffeIdOrProblem(cert: { subjectaltname?: string }): { id: string } | { problem: string } {
  const uris = uriSansOf(cert);
  if (uris.length !== 1 || !uris[0]!.startsWith('spiffe://')) {
    return { problem: uris.length === 0 ? 'the peer certificate has no SPIFFE ID (no URI SAN)' : `the peer certificate has URI SANs ${uris.join(', ')}, not exactly one SPIFFE ID` };
  }
  return { id: uris[0]! };
}

function describeExpected(expected: ExpectedPeer): string {
  if (typeof expected === 'string') return expected;
  if (typeof expected === 'function') return 'an identity the policy allows';
  return `one of ${expected.join(', ')}`;
}

function matches(expected: ExpectedPeer, id: string): boolean {
  if (typeof expected === 'string') return id === expected;
  if (typeof expected === 'function') return expected(id);
  return expected.includes(id);
}

/** Why a peer certificate is not `expected`, or undefined when it is. */
export function peerIdentityProblem(cert: { subjectaltname?: string }, expected: ExpectedPeer): string | undefined {
  const found = spiffeIdOrProblem(cert);
  if ('problem' in found) return found.problem;
  if (!matches(expected, found.id)) return `the peer is ${found.id}, expected ${describeExpected(expected)}`;
  return undefined;
}

/** A checkServerIdentity that looks at the SPIFFE ID instead of the host name. */
export function spiffeServerCheck(expected: ExpectedPeer): (hostname: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_hostname, cert) => {
    const problem = peerIdentityProblem(cert, expected);
    return problem === undefined ? undefined : new PeerRejected(problem);
  };
}

/** The SPIFFE ID of a connected peer whose chain was verified, else undefined. */
export function peerSpiffeId(socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const found = spiffeIdOrProblem(socket.getPeerCertificate());
  return 'id' in found ? found.id : undefined;
}

/** Throws PeerRejected unless the peer's chain was verified and its SPIFFE ID is `expected` (for servers judging clients). */
export function verifyPeer(socket: tls.TLSSocket, expected: ExpectedPeer): string {
  if (!socket.authorized) {
    const why = socket.authorizationError ? String(socket.authorizationError) : 'it presented no certificate';
    throw new PeerRejected(`the peer is not authenticated: ${why}`);
  }
  const cert = socket.getPeerCertificate();
  const problem = peerIdentityProblem(cert, expected);
  if (problem !== undefined) throw new PeerRejected(problem);
  return uriSansOf(cert)[0]!;
}
