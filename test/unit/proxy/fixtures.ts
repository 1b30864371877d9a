// What the proxy's stage tests share: real listeners on loopback, a static route table, a logger
// that keeps its lines, and workload identities from an in-memory mesh PKI.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { pino, type Logger } from 'pino';
import { CertificateAuthority } from '../../../src/identity/ca.js';
import type { TlsIdentity } from '../../../src/identity/tls.js';
import type { Endpoint } from '../../../src/proxy/destinations.js';
import { ProxyMetrics } from '../../../src/proxy/metrics.js';
import { RouteTable } from '../../../src/proxy/outbound/logical/table.js';
import { StaticResolver, type StaticDestination } from '../../../src/proxy/static-resolver.js';
import { issueMaterial, meshPki, staticIdentity } from '../identity/fixtures.js';

export const HOST = '127.0.0.1';

export function logger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }), lines };
}

export function metrics(): ProxyMetrics {
  return new ProxyMetrics(() => undefined);
}

/** A destination with one backend whose endpoints are `endpoints`. */
export function destination(endpoints: Endpoint[], loadBalancer: 'ewma' | 'round-robin' = 'round-robin'): StaticDestination {
  return {
    service: 'web.sample.svc.cluster.local',
    namespace: 'sample',
    exists: true,
    ports: [],
    loadBalancer,
    version: '1',
    backends: [{ service: 'web.sample.svc.cluster.local', namespace: 'sample', weight: 1, exists: true, endpoints }],
  };
}

/** An unmeshed endpoint (reached in plaintext) at HOST:port. */
export function plainEndpoint(port: number, pod = `web-${port}`): Endpoint {
  return { address: HOST, port, cluster: 'cluster1', pod, ready: true };
}

export function routeTable(resolver: StaticResolver, m = metrics()): RouteTable {
  return new RouteTable({ resolver, cluster: 'cluster1', metrics: m });
}

/** A port nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function listening<S extends net.Server>(server: S): Promise<{ server: S; port: number; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    close: async () => {
      if (server instanceof http.Server) server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A TCP app that echoes what it gets. */
export function echoServer(): net.Server {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  const close = server.close.bind(server);
  server.close = (cb) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  };
  return server;
}

export async function connect(port: number, host = HOST): Promise<net.Socket> {
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  return socket;
}

/** Writes `text` and reads until as many bytes came back. */
export async function roundTrip(socket: net.Socket, text: string): Promise<string> {
  socket.write(text);
  let got = '';
  while (got.length < text.length) got += String((await once(socket, 'data'))[0]);
  return got;
}

/** Workload identities under one trust anchor, SPIFFE IDs `spiffe://cluster.local/ns/sample/sa/<sa>`. */
export async function identities(): Promise<(serviceAccount: string) => Promise<TlsIdentity>> {
  const { issuers } = await meshPki(['cluster1']);
  const ca = new CertificateAuthority({ issuer: issuers.cluster1!, trustDomain: 'cluster.local' });
  return async (serviceAccount) => staticIdentity(await issueMaterial(ca, { namespace: 'sample', serviceAccount }));
}

export const spiffe = (sa: string) => `spiffe://cluster.local/ns/sample/sa/${sa}`;
