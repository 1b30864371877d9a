// mTLS between proxies, both ends. The client dials a peer's proxy (directly, or through a gateway
// by SNI) and accepts it only with the SPIFFE ID discovery promised; the server takes only clients
// whose certificate chains to the trust bundle. ALPN says what a connection carries: `h2` for HTTP,
// `strait-tcp` for an opaque tunnel (see tunnel.ts).
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { clientTlsOptions, followRotation, serverTlsOptions, type TlsIdentity } from '../../identity/tls.js';
import { TUNNEL_ALPN } from './tunnel.js';

export const HTTP_ALPN = 'h2';

/** A peer proxy's mTLS address and the identity it must present. */
export interface PeerAddress {
  host: string;
  port: number;
  /** Sent as SNI: a gateway routes by it. */
  sni?: string;
  identity: string;
}

/** Opens mTLS to `peer` offering `alpn`; the handshake rejects a peer with another identity (PeerRejected). */
export function dialPeer(identity: TlsIdentity, peer: PeerAddress, alpn: string): TLSSocket {
  const socket = tls.connect({ host: peer.host, port: peer.port, ...clientTlsOptions(identity, peer.identity, { servername: peer.sni, alpn: [alpn] }) });
  socket.setNoDelay(true);
  return socket;
}

/** The server proxies' listener: client certificates required, HTTP/2 or tunnels, the newest certificate presented. */
export function peerServer(identity: TlsIdentity, handshakeTimeoutMs: number): tls.Server {
  const server = tls.createServer({
    ...serverTlsOptions(identity, { clientCert: 'require', alpn: [HTTP_ALPN, TUNNEL_ALPN] }),
    handshakeTimeout: handshakeTimeoutMs,
  });
  followRotation(server, identity);
  // Small writes (headers, short answers) must not wait for Nagle's algorithm.
  server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
  return server;
}
