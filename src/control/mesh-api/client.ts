// The client side of another cluster's mesh API: HTTP/2 over TLS to that cluster's gateway, with the
// SNI route key `api.<cluster>.gw.strait.mesh` (which the gateway splices to the mesh API), the
// control plane's own certificate as the client certificate, and the link credential as a bearer
// token on every call.
import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { h2SessionManager } from '../../api/h2-sessions.js';
import { Mesh } from '../../api/gen/strait/mesh/v1/mesh_pb.js';
import { meshApiRouteKey } from '../../api/route-keys.js';
import { controlPlaneSpiffeId } from '../../identity/spiffe.js';
import { clientTlsOptions, type TlsIdentity } from '../../identity/tls.js';

export interface MeshApiTarget {
  /** Where to connect: the cluster's gateway (or its mesh API port itself). */
  address: { host: string; port: number };
  /** The cluster whose mesh API this is: it names the SNI route key. */
  cluster: string;
  trustDomain: string;
  /** The calling control plane's certificate, presented as the client certificate. */
  identity: TlsIdentity;
  /** The link credential the cluster minted for the caller. */
  token: string;
}

export interface MeshApiConnection {
  client: Client<typeof Mesh>;
  /** Closes the connection; open streams end. */
  close(): void;
}

/** One connection to a cluster's mesh API (made on the first call); the server must be a control plane of the mesh. */
export function connectMeshApi(target: MeshApiTarget): MeshApiConnection {
  const { host, port } = target.address;
  const baseUrl = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const manager = h2SessionManager(baseUrl, {
    ...clientTlsOptions(target.identity, controlPlaneSpiffeId(target.trustDomain), { servername: meshApiRouteKey(target.cluster), alpn: ['h2'] }),
  });
  const bearer: Interceptor = (next) => (req) => {
    req.header.set('authorization', `Bearer ${target.token}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl, httpVersion: '2', sessionManager: manager, interceptors: [bearer] });
  return { client: createClient(Mesh, transport), close: () => manager.abort() };
}
