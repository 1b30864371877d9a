// The proxy's configuration, from the environment the runtime (or the injector) gives it. Every
// problem is reported at once, each naming the variable and the reason.
import { isIP } from 'node:net';
import { PROXY_PORTS } from '../api/mesh.js';
import { parseSpiffeId, trustDomainProblem } from '../identity/spiffe.js';
import { splitAuthority } from './transport/headers.js';

/** The ports Linkerd's proxy uses, kept so that users find them where they expect. */
export const DEFAULT_PORTS = PROXY_PORTS;

/** One explicit outbound TCP listener: connections to podIP:`port` go to `target` (a service authority). */
export interface OutboundListener {
  port: number;
  target: string;
}

export interface ProxyConfig {
  pod: string;
  namespace: string;
  /** The pod's address: every listener binds to it, and the inbound side calls the app on it. */
  podIp: string;
  cluster: string;
  /** The control plane's Identity and Discovery services. */
  controlPlane: { host: string; port: number };
  controlPlaneIdentity: string;
  /** The pod's platform credential, re-read at every renewal (the platform refreshes it). */
  identityTokenFile: string;
  trustAnchorsFile: string;
  trustDomain: string;
  ports: { outbound: number; inbound: number; admin: number };
  outboundListeners: OutboundListener[];
}

export class ProxyConfigError extends Error {
  override name = 'ProxyConfigError';
  constructor(readonly problems: string[]) {
    super(`the proxy's configuration is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Parses `strait.dev/outbound` (env STRAIT_OUTBOUND): `port=target[,port=target…]`, e.g.
 * `6379=redis.default:6379`. The target is a service authority with its port.
 */
export function parseOutboundListeners(text: string, reserved: readonly number[], source = 'STRAIT_OUTBOUND'): { listeners: OutboundListener[]; problems: string[] } {
  const listeners: OutboundListener[] = [];
  const problems: string[] = [];
  for (const item of text.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq === -1) {
      problems.push(`${source}: "${item}" is not port=target (e.g. 6379=redis.default:6379)`);
      continue;
    }
    const portText = item.slice(0, eq).trim();
    const target = item.slice(eq + 1).trim();
    const port = parsePort(portText);
    if (port === undefined) {
      problems.push(`${source}: "${item}": "${portText}" is not a port from 1 to 65535`);
      continue;
    }
    const { host, port: targetPort } = splitAuthority(target);
    if (host === '' || targetPort === undefined) {
      problems.push(`${source}: "${item}": the target "${target}" must be host:port, e.g. redis.default:6379`);
      continue;
    }
    if (reserved.includes(port)) {
      problems.push(`${source}: "${item}": port ${port} is one of the proxy's own ports (${reserved.join(', ')})`);
      continue;
    }
    if (listeners.some((l) => l.port === port)) {
      problems.push(`${source}: port ${port} is listed twice`);
      continue;
    }
    listeners.push({ port, target });
  }
  return { listeners, problems };
}

/** Reads the proxy's configuration from `env`; throws ProxyConfigError listing every problem. */
export function proxyConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) {
      problems.push(`${name} is not set`);
      return '';
    }
    return value;
  };
  const pod = required('POD_NAME');
  const namespace = required('POD_NAMESPACE');
  const podIp = required('POD_IP');
  const cluster = required('STRAIT_CLUSTER');
  const controlPlaneText = required('STRAIT_CONTROL_PLANE');
  const identityTokenFile = required('STRAIT_IDENTITY_TOKEN_FILE');
  const trustAnchorsFile = required('STRAIT_TRUST_ANCHORS');
  const trustDomain = required('STRAIT_TRUST_DOMAIN');
  const controlPlaneIdentity = required('STRAIT_CONTROL_PLANE_IDENTITY');

  if (podIp && isIP(podIp) === 0) problems.push(`POD_IP: "${podIp}" is not an IP address`);
  let controlPlane = { host: '', port: 0 };
  if (controlPlaneText) {
    const { host, port } = splitAuthority(controlPlaneText);
    if (host === '' || port === undefined) problems.push(`STRAIT_CONTROL_PLANE: "${controlPlaneText}" must be host:port, e.g. 127.20.0.1:8086`);
    else controlPlane = { host, port };
  }
  if (trustDomain) {
    const problem = trustDomainProblem(trustDomain);
    if (problem) problems.push(`STRAIT_TRUST_DOMAIN: "${trustDomain}" is invalid: ${problem}`);
  }
  if (controlPlaneIdentity && !parseSpiffeId(controlPlaneIdentity)) {
    problems.push(`STRAIT_CONTROL_PLANE_IDENTITY: "${controlPlaneIdentity}" is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`);
  }
  const ports = { ...DEFAULT_PORTS };
  const outbound = parseOutboundListeners(env.STRAIT_OUTBOUND ?? '', Object.values(ports));
  problems.push(...outbound.problems);
  if (problems.length > 0) throw new ProxyConfigError(problems);
  return {
    pod,
    namespace,
    podIp,
    cluster,
    controlPlane,
    controlPlaneIdentity,
    identityTokenFile,
    trustAnchorsFile,
    trustDomain,
    ports,
    outboundListeners: outbound.listeners,
  };
}
