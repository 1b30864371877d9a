// What the gateway tests share: a two-cluster mesh PKI, upstreams that count every connection
// they get (so a test can prove nothing was forwarded), a gateway whose log lines are kept, and
// small raw and TLS clients.
import { createHash } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { certificatesPem } from '../../src/identity/pem.js';
import type { Issuer } from '../../src/identity/pki.js';
import { peerSpiffeId, serverTlsOptions, type TlsIdentity } from '../../src/identity/tls.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/router.js';
import { issueMaterial, meshPki, staticIdentity } from '../unit/identity/fixtures.js';

export const TRUST_DOMAIN = 'cluster.local';
export const spiffe = (sa: string, ns = 'sample') => `spiffe://${TRUST_DOMAIN}/ns/${ns}/sa/${sa}`;
export const GATEWAY_ID = spiffe('gateway', 'strait-system');

export interface MeshIdentities {
  /** cluster1's gateway. */
  gateway: TlsIdentity;
  /** A workload of cluster1, behind the gateway. */
  helloworld: TlsIdentity;
  /** cluster1's control plane (serving the mesh API). */
  controlPlane: TlsIdentity;
  /** A workload of cluster2, calling through the gateway. */
  sleep: TlsIdentity;
  /** A workload whose certificate comes from another mesh's anchor, though it trusts this mesh's anchor. */
  stranger: TlsIdentity;
}

export async function meshIdentities(): Promise<MeshIdentities> {
  const { issuers } = await meshPki(['cluster1', 'cluster2'], TRUST_DOMAIN);
  const foreign = await meshPki(['elsewhere'], TRUST_DOMAIN);
  const ca = (issuer: Issuer | undefined) => new CertificateAuthority({ issuer: issuer!, trustDomain: TRUST_DOMAIN });
  const [c1, c2, other] = [ca(issuers.cluster1), ca(issuers.cluster2), ca(foreign.issuers.elsewhere)];
  const id = async (authority: CertificateAuthority, serviceAccount: string, namespace = 'sample') =>
    staticIdentity(await issueMaterial(authority, { namespace, serviceAccount }));
  return {
    gateway: await id(c1, 'gateway', 'strait-system'),
    helloworld: await id(c1, 'helloworld'),
    controlPlane: await id(c1, 'control-plane', 'strait-system'),
    sleep: await id(c2, 'sleep'),
    stranger: staticIdentity({ ...(await issueMaterial(other, { namespace: 'sample', serviceAccount: 'sleep' })), trustBundlePem: certificatesPem(issuers.cluster1!.trustBundle) }),
  };
}

/** A listening server that counts the connections it accepted. */
export interface Upstream {
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function listening(server: net.Server, connections: Set<net.Socket>): Promise<Upstream> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstream: Upstream = {
    port: (server.address() as AddressInfo).port,
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: net.Socket) => {
    upstream.connections++;
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  return upstream;
}

/** What a TLS workload saw of one client: its SPIFFE ID, the SNI, and keying material of the session. */
export interface SeenClient {
  clientId: string | undefined;
  serverName: string | undefined;
  sessionKey: string;
}

/** A mesh workload's TLS server (client certificate required) that records each client and echoes what it sends. */
export async function tlsWorkload(identity: TlsIdentity): Promise<Upstream & { seen: SeenClient[] }> {
  const seen: SeenClient[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(serverTlsOptions(identity, { clientCert: 'require' }), (socket) => {
    seen.push({ clientId: peerSpiffeId(socket), serverName: socket.servername || undefined, sessionKey: sessionKey(socket) });
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  return Object.assign(await listening(server, sockets), { seen });
}

/** Keying material exported from a TLS session (RFC 5705): equal on both ends only when they share one session. */
export function sessionKey(socket: tls.TLSSocket): string {
  return socket.exportKeyingMaterial(32, 'strait gateway test', Buffer.alloc(0)).toString('hex');
}

/** A plain TCP server: `onConnection` gets each accepted socket (half-open allowed). */
export async function tcpUpstream(onConnection: (socket: net.Socket) => void): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  return listening(server, sockets);
}

export interface TestGateway extends Gateway {
  logs: Record<string, unknown>[];
}

export async function testGateway(options: Omit<GatewayOptions, 'host' | 'port' | 'log'>): Promise<TestGateway> {
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const gateway = await startGateway({ ...options, host: '127.0.0.1', port: 0, log });
  return Object.assign(gateway, { logs });
}

/**
 * Sends `bytes` over plain TCP (then ends, unless `end` is false: a client that keeps its side open)
 * and resolves with everything received once the gateway closed the connection.
 */
export function rawExchange(port: number, bytes: Buffer, options: { end?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      if (bytes.length > 0) socket.write(bytes);
      if (options.end !== false) socket.end();
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** A TLS client through the gateway: resolves once connected and echoed, with what it saw; rejects with the TLS error. */
export function tlsCall(
  port: number,
  options: tls.ConnectionOptions,
  connect: () => net.Socket | undefined = () => undefined,
): Promise<{ serverId: string | undefined; sessionKey: string; echoed: string }> {
  return new Promise((resolve, reject) => {
    const rawSocket = connect();
    const socket = tls.connect({ host: '127.0.0.1', port, ...(rawSocket ? { socket: rawSocket } : {}), ...options }, () => {
      const serverId = peerSpiffeId(socket);
      const key = sessionKey(socket);
      socket.write('ping');
      socket.once('data', (data: Buffer) => {
        socket.end();
        resolve({ serverId, sessionKey: key, echoed: data.toString() });
      });
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the echo')));
  });
}

export function sha256(...parts: Buffer[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}

/** Polls until `check` holds (for counters updated when sockets close), failing after `timeoutMs`. */
export async function eventually(check: () => void, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Open TCP handles of this process, by kind, to check that a test left none behind. */
export function openTcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length;
}
