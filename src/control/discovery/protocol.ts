// Which protocol a service port speaks: HTTP (routed per request) or opaque TCP (carried as bytes).
//
// The rule, first match wins, follows what the manifests of the guides already say:
//  1. the port's `appProtocol` (Kubernetes' field): `http`, `http2`, `h2c`, `kubernetes.io/h2c`,
//     `grpc`, `grpc-web` and `kubernetes.io/ws` are HTTP; any other value (`tcp`, `tls`, `https`,
//     `mysql`, `kubernetes.io/wss`, …) is TCP, since the proxy cannot read it as HTTP;
//  2. the port's name, by Istio's convention `<protocol>[-<suffix>]` (`http-web`, `tcp-db`,
//     `redis`): the same protocol names as above;
//  3. Linkerd's `config.linkerd.io/opaque-ports` annotation on the Service (`6379,4000-4100`): TCP;
//  4. Linkerd's default opaque ports, whose servers speak first so that HTTP detection would only
//     stall them (SMTP 25 and 587, MySQL 3306 and 4444, PostgreSQL 5432, Redis 6379,
//     Elasticsearch 9300, memcached 11211): TCP;
//  5. otherwise HTTP. Linkerd and Istio sniff the first bytes instead; the Strait proxy learns the
//     protocol from discovery, and a client that means raw TCP on another port says so with
//     `CONNECT` or an explicit outbound listener.
import type { ServicePort } from '../../api/kinds.js';

export type PortProtocol = 'http' | 'tcp';

export const OPAQUE_PORTS_ANNOTATION = 'config.linkerd.io/opaque-ports';

const HTTP_PROTOCOLS = new Set(['http', 'http2', 'h2c', 'kubernetes.io/h2c', 'grpc', 'grpc-web', 'kubernetes.io/ws']);
const TCP_PROTOCOLS = new Set(['tcp', 'tls', 'https', 'mongo', 'mysql', 'redis', 'kubernetes.io/wss']);
const DEFAULT_OPAQUE_PORTS = new Set([25, 587, 3306, 4444, 5432, 6379, 9300, 11211]);

/** The protocol of one port; `annotations` are the Service's. */
export function portProtocol(port: Pick<ServicePort, 'name' | 'appProtocol' | 'port'>, annotations: Record<string, string> | undefined): PortProtocol {
  const declared = port.appProtocol?.toLowerCase();
  if (declared) return HTTP_PROTOCOLS.has(declared) ? 'http' : 'tcp';
  const prefix = port.name?.toLowerCase().split('-')[0];
  if (prefix && HTTP_PROTOCOLS.has(prefix)) return 'http';
  if (prefix && TCP_PROTOCOLS.has(prefix)) return 'tcp';
  const opaque = annotations?.[OPAQUE_PORTS_ANNOTATION];
  if (opaque !== undefined && inPortList(opaque, port.port)) return 'tcp';
  return DEFAULT_OPAQUE_PORTS.has(port.port) ? 'tcp' : 'http';
}

/** True when `port` is in a Linkerd port list (`25,587,4000-4100`); malformed entries match nothing. */
function inPortList(list: string, port: number): boolean {
  return list.split(',').some((entry) => {
    const m = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(entry);
    if (!m) return false;
    const low = Number(m[1]);
    const high = m[2] === undefined ? low : Number(m[2]);
    return port >= low && port <= high;
  });
}
