// Where the endpoint stage sends a call: a meshed endpoint's proxy (mTLS, directly or through a
// gateway), and what a failed connect means for the balancer.
import type { Endpoint } from '../../destinations.js';
import type { PeerAddress } from '../../transport/tls.js';

/** Where a meshed endpoint's proxy accepts mTLS, and who it must be. */
export interface MeshTarget extends PeerAddress {
  /** Pool key: one session per distinct target. */
  key: string;
}

export function meshTarget(endpoint: Endpoint & { identity: string }, defaultInboundPort: number): MeshTarget {
  const host = endpoint.proxy?.host ?? endpoint.address;
  const port = endpoint.proxy?.port ?? defaultInboundPort;
  const sni = endpoint.proxy?.sni;
  return { host, port, sni, identity: endpoint.identity, key: `${host}:${port}|${sni ?? ''}|${endpoint.identity}` };
}

/** Connecting failed before anything of the request was sent: safe to try another endpoint. */
export class ConnectFailed extends Error {
  override name = 'ConnectFailed';

  constructor(
    message: string,
    /** No TCP connection to host:port could be made (refused, unreachable, timed out): for a gateway, nothing behind it can be reached. */
    readonly unreachable = false,
  ) {
    super(message);
  }
}

export function describeTarget(target: MeshTarget): string {
  return `${target.host}:${target.port}${target.sni ? ` (SNI ${target.sni})` : ''}`;
}

export function describeEndpoint(e: Endpoint): string {
  return `${e.pod ?? e.address} (${e.address}:${e.port}${e.identity ? `, ${e.identity}` : ''})`;
}
