// The control plane's identity service (strait.identity.v1.Identity): checks a workload's platform
// credential, signs its CSR with the cluster's issuer for the identity the credential grants, and
// serves the trust bundle. Also the control plane's own certificate and its HTTP/2 TLS server.
import http2 from 'node:http2';
import { Code, ConnectError, createContextKey, createContextValues, type ConnectRouter, type ServiceImpl } from '@connectrpc/connect';
import { connectNodeAdapter, type ConnectNodeAdapterOptions } from '@connectrpc/connect-node';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Identity } from '../api/gen/strait/identity/v1/identity_pb.js';
import { CertificateAuthority, CsrRejected, IssuerUnusable, localCertifier } from '../identity/ca.js';
import { WorkloadIdentity } from '../identity/client.js';
import { CredentialRejected, type CredentialVerifier, type VerifiedCredential } from '../identity/credentials.js';
import { CONTROL_PLANE_WORKLOAD, controlPlaneSpiffeId } from '../identity/spiffe.js';
import { followRotation, serverTlsOptions, type ClientCertPolicy, type TlsIdentity } from '../identity/tls.js';
import { derOf } from '../identity/x509.js';

/** What the service reports about each request, for logs and metrics. */
export type IdentityEvent =
  | { outcome: 'issued'; spiffeId: string; pod?: string; notAfter: Date }
  | { outcome: 'rejected'; method: 'Certify' | 'TrustBundle'; reason: string; pod?: string };

/** The caller's IP address, for verifiers that bind a credential to where it is presented from (TokenReview). */
export const PEER_ADDRESS = createContextKey<string | undefined>(undefined, { description: 'peer address' });

/** Context values carrying the request's peer address: pass as createControlPlaneServer's contextValues. */
export function peerContextValues(req: { socket?: { remoteAddress?: string } }) {
  return createContextValues().set(PEER_ADDRESS, req.socket?.remoteAddress);
}

/** A verifier that may also check the caller's address (the local bootstrap tokens ignore it). */
type PeerVerifier = CredentialVerifier & { verify(token: string, peer?: string): Promise<VerifiedCredential> };

export interface IdentityServiceOptions {
  ca: CertificateAuthority;
  verifier: PeerVerifier;
  onEvent?: (event: IdentityEvent) => void;
}

/** Maps a failure to the Connect code a caller can act on; the message says why. */
function asConnectError(err: unknown): ConnectError {
  if (err instanceof CredentialRejected) return new ConnectError(`credential rejected (${err.reason}): ${err.message}`, Code.Unauthenticated);
  if (err instanceof CsrRejected) {
    return new ConnectError(`CSR rejected (${err.reason}): ${err.message}`, err.reason === 'identity-mismatch' ? Code.PermissionDenied : Code.InvalidArgument);
  }
  if (err instanceof IssuerUnusable) return new ConnectError(err.message, Code.FailedPrecondition);
  return ConnectError.from(err);
}

export function identityService(options: IdentityServiceOptions): ServiceImpl<typeof Identity> {
  const { ca, verifier, onEvent } = options;
  const trustBundle = () => ca.trustBundle.map(derOf);
  return {
    async certify(req, ctx) {
      let credential: VerifiedCredential | undefined;
      try {
        credential = await verifier.verify(req.token, ctx.values.get(PEER_ADDRESS));
        if (credential.namespace === CONTROL_PLANE_WORKLOAD.namespace && credential.serviceAccount === CONTROL_PLANE_WORKLOAD.serviceAccount) {
          // Workloads find the CA by this identity; only the control plane itself may hold it.
          throw new ConnectError(`${controlPlaneSpiffeId(ca.trustDomain)} is the control plane's own identity and is not issued to workloads`, Code.PermissionDenied);
        }
        const issued = await ca.certify(req.csr, credential);
        onEvent?.({ outcome: 'issued', spiffeId: issued.spiffeId, pod: credential.pod, notAfter: issued.certificate.notAfter });
        return {
          certChain: issued.chain.map(derOf),
          trustBundle: trustBundle(),
          spiffeId: issued.spiffeId,
          notAfter: timestampFromDate(issued.certificate.notAfter),
        };
      } catch (err) {
        const error = asConnectError(err);
        onEvent?.({ outcome: 'rejected', method: 'Certify', reason: error.rawMessage, pod: credential?.pod });
        throw error;
      }
    },
    async trustBundle(req, ctx) {
      try {
        await verifier.verify(req.token, ctx.values.get(PEER_ADDRESS));
      } catch (err) {
        const error = asConnectError(err);
        onEvent?.({ outcome: 'rejected', method: 'TrustBundle', reason: error.rawMessage });
        throw error;
      }
      return { trustBundle: trustBundle(), trustDomain: ca.trustDomain };
    },
  };
}

/** Serves the identity service on a Connect router. */
export function registerIdentityService(router: ConnectRouter, options: IdentityServiceOptions): void {
  router.service(Identity, identityService(options));
}

/** The control plane's own identity, signed by its local CA directly and renewed like any workload's. Call start(). */
export function controlPlaneIdentity(ca: CertificateAuthority, options: { renewFraction?: number } = {}): WorkloadIdentity {
  return new WorkloadIdentity({
    certifier: localCertifier(ca, CONTROL_PLANE_WORKLOAD),
    expectedSpiffeId: controlPlaneSpiffeId(ca.trustDomain),
    ...options,
  });
}

/**
 * An HTTP/2 TLS server (HTTP/1.1 also accepted, as Connect allows) for the control plane's Connect
 * services, presenting `identity` and following its rotation. Client certificates are `request`ed
 * by default, because a workload asking for its first certificate has none. Call listen().
 */
export function createControlPlaneServer(
  identity: TlsIdentity,
  routes: (router: ConnectRouter) => void,
  options: { clientCert?: ClientCertPolicy; readMaxBytes?: number; contextValues?: ConnectNodeAdapterOptions['contextValues'] } = {},
): http2.Http2SecureServer {
  const server = http2.createSecureServer(
    // No Nagle delay: discovery pushes small updates that must reach proxies at once.
    { ...serverTlsOptions(identity, { clientCert: options.clientCert ?? 'request' }), allowHTTP1: true, noDelay: true },
    connectNodeAdapter({ routes, readMaxBytes: options.readMaxBytes ?? 1024 * 1024, contextValues: options.contextValues }),
  );
  followRotation(server, identity);
  return server;
}
