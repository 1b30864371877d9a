// Who is calling: the SPIFFE ID of the client certificate on the request's TLS connection. Connect
// handlers do not see the socket, so the server's adapter copies the verified identity into each
// request's context values (`connectNodeAdapter({ …, contextValues: peerContextValues })`).
import type http from 'node:http';
import type http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { Code, ConnectError, createContextKey, createContextValues, type ContextValues, type HandlerContext } from '@connectrpc/connect';
import { parseSpiffeId, type ParsedSpiffeId } from '../../identity/spiffe.js';
import { peerSpiffeId } from '../../identity/tls.js';

/** Set by peerContextValues: the client's verified SPIFFE ID, or null for a client without one. */
const peerIdentityKey = createContextKey<string | null | undefined>(undefined, { description: 'the TLS client SPIFFE ID' });

/** For connectNodeAdapter's `contextValues`: records the client's verified SPIFFE ID with each request. */
export function peerContextValues(req: http.IncomingMessage | http2.Http2ServerRequest): ContextValues {
  // For HTTP/2 this is the session's socket, reached through a proxy object that forwards property
  // reads (but not `in`) to the TLS socket.
  const socket = ('stream' in req ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
  const id = typeof socket?.getPeerCertificate === 'function' ? peerSpiffeId(socket) : undefined;
  return createContextValues().set(peerIdentityKey, id ?? null);
}

/**
 * The caller's workload identity, which must be in `trustDomain`. Throws Unauthenticated for a
 * caller without a verified certificate, PermissionDenied for a foreign or non-workload identity.
 */
export function authenticatedCaller(ctx: HandlerContext, trustDomain: string): ParsedSpiffeId & { spiffeId: string } {
  const id = ctx.values.get(peerIdentityKey);
  if (id === undefined) {
    throw new ConnectError('the server does not pass client certificates to this service: serve it with contextValues: peerContextValues', Code.Internal);
  }
  if (id === null) throw new ConnectError('this service requires the caller’s workload certificate (mTLS); none was verified on this connection', Code.Unauthenticated);
  const parsed = parseSpiffeId(id);
  if (!parsed) throw new ConnectError(`the caller ${id} is not a workload identity (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)`, Code.PermissionDenied);
  if (parsed.trustDomain !== trustDomain) throw new ConnectError(`the caller ${id} is not in this mesh's trust domain ${trustDomain}`, Code.PermissionDenied);
  return { ...parsed, spiffeId: id };
}
