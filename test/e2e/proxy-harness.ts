// What the proxy tests share: a mesh PKI made in the test (anchor, issuer, workload certificates),
// a static Resolver standing in for discovery (the data plane is what is under test), proxies and
// apps on their own loopback addresses, and small clients that speak through a proxy.
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { CertificateAuthority } from '../../src/identity/ca.js';
import type { TlsIdentity } from '../../src/identity/tls.js';
import type { Backend, DestinationWatch, Endpoint, Resolver } from '../../src/proxy/destinations.js';
import { StaticResolver, type StaticDestination } from '../../src/proxy/static-resolver.js';
import { splitAuthority } from '../../src/proxy/transport/headers.js';
import { runProxy, type RunningProxy } from '../../src/proxy/main.js';
import type { OutboundListener } from '../../src/proxy/config.js';
import { issueMaterial, meshPki, staticIdentity } from '../unit/identity/fixtures.js';

export const TRUST_DOMAIN = 'cluster.local';
export const spiffe = (sa: string, ns = 'sample') => `spiffe://${TRUST_DOMAIN}/ns/${ns}/sa/${sa}`;

/** A mesh PKI: one anchor, one issuer per cluster, and workload identities signed on demand. */
export class TestPki {
  private constructor(private readonly cas: Record<string, CertificateAuthority>) {}

  static async create(clusters = ['cluster1']): Promise<TestPki> {
    const { issuers } = await meshPki(clusters, TRUST_DOMAIN);
    const cas: Record<string, CertificateAuthority> = {};
    for (const c of clusters) cas[c] = new CertificateAuthority({ issuer: issuers[c]!, trustDomain: TRUST_DOMAIN });
    return new TestPki(cas);
  }

  async identity(serviceAccount: string, namespace = 'sample', cluster = 'cluster1'): Promise<TlsIdentity> {
    return staticIdentity(await issueMaterial(this.cas[cluster]!, { namespace, serviceAccount }));
  }
}

/** The static resolver, plus names that never get an answer (as when discovery is unreachable for a new name). */
export class TestResolver extends StaticResolver {
  readonly silent = new Set<string>();

  override watch(name: string): DestinationWatch {
    const watch = super.watch(name);
    if (!this.silent.has(splitAuthority(name).host)) return watch;
    return {
      ...watch,
      current: () => undefined,
      ready: (timeoutMs) => new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)),
    };
  }
}

export function backend(service: string, endpoints: Endpoint[], weight = 1, namespace = 'sample'): Backend {
  return { service: `${service}.${namespace}.svc.cluster.local`, namespace, weight, exists: true, endpoints };
}

/** A destination with one backend (the service itself). */
export function service(name: string, endpoints: Endpoint[], extra: Partial<StaticDestination> = {}): StaticDestination {
  return {
    service: `${name}.sample.svc.cluster.local`,
    namespace: 'sample',
    exists: true,
    ports: [],
    backends: [backend(name, endpoints)],
    loadBalancer: 'ewma',
    version: '1',
    ...extra,
  };
}

export interface TestProxy extends RunningProxy {
  ip: string;
  pod: string;
  logs: string[];
  /** The endpoint other proxies use to reach this pod's app on `port` over mTLS. */
  endpoint(port: number, identity: string, extra?: Partial<Endpoint>): Endpoint;
}

export async function startProxy(options: {
  ip: string;
  pod: string;
  identity: TlsIdentity;
  resolver: Resolver;
  cluster?: string;
  namespace?: string;
  outboundListeners?: OutboundListener[];
  headersTimeoutMs?: number;
  resolveTimeoutMs?: number;
  /** The inbound port; a free one by default (discovery names 4143 for a pod's own proxy). */
  inboundPort?: number;
}): Promise<TestProxy> {
  const logs: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const cluster = options.cluster ?? 'cluster1';
  const proxy = await runProxy(
    {
      pod: options.pod,
      namespace: options.namespace ?? 'sample',
      podIp: options.ip,
      cluster,
      controlPlane: { host: '127.0.0.1', port: 1 },
      controlPlaneIdentity: spiffe('control-plane', 'strait-system'),
      identityTokenFile: 'unused',
      trustAnchorsFile: '/unused',
      trustDomain: TRUST_DOMAIN,
      ports: { outbound: 0, inbound: options.inboundPort ?? 0, admin: 0 },
      outboundListeners: options.outboundListeners ?? [],
    },
    { identity: options.identity, resolver: options.resolver, log, headersTimeoutMs: options.headersTimeoutMs, resolveTimeoutMs: options.resolveTimeoutMs },
  );
  return {
    ...proxy,
    ip: options.ip,
    pod: options.pod,
    logs,
    endpoint: (port, identity, extra = {}) => ({
      address: options.ip,
      port,
      identity,
      proxy: { host: options.ip, port: proxy.ports.inbound },
      cluster,
      pod: options.pod,
      ready: true,
      ...extra,
    }),
  };
}

/** An HTTP app on ip:port that counts its open connections. */
export interface TestApp {
  server: Server;
  port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startApp(ip: string, handler: RequestListener, port = 0): Promise<TestApp> {
  const server = http.createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, ip, resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    connections: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: Record<string, string | undefined>;
}

/** Reads a whole response. */
export function readAnswer(res: IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: res.trailers }));
    res.on('error', reject);
  });
}

/** A request through `proxy` as a client with http_proxy set sends it (absolute-form). */
export function viaProxy(
  proxy: { ip: string; ports: { outbound: number } },
  url: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: http.Agent } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.ip, port: proxy.ports.outbound, method: options.method ?? 'GET', path: url, headers: options.headers, agent: options.agent ?? false });
    req.on('response', (res) => readAnswer(res).then(resolve, reject));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The admin port's /metrics text. */
export async function scrape(proxy: { ip: string; ports: { admin: number } }, path = '/metrics'): Promise<string> {
  const answer = await new Promise<Answer>((resolve, reject) => {
    http.get({ host: proxy.ip, port: proxy.ports.admin, path, agent: false }, (res) => readAnswer(res).then(resolve, reject)).on('error', reject);
  });
  assert.equal(answer.status, 200, `${path}: ${answer.body}`);
  return answer.body;
}

/** The sum of the samples of `name` whose labels include `labels`. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const brace = line.indexOf('{');
    const labelText = brace === -1 ? '' : line.slice(brace + 1, line.lastIndexOf('}'));
    const found: Record<string, string> = {};
    for (const m of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]!] = m[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Waits until `check` passes (it throws until then), for at most `ms`. */
export async function eventually(check: () => void | Promise<void>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A pod with a proxy: its app(s) are started by the test on the same address. */
export interface Mesh {
  pki: TestPki;
  resolver: TestResolver;
  client: TestProxy;
  server: TestProxy;
  app: TestApp;
  close(): Promise<void>;
}

/**
 * The usual pair: `sleep` (client proxy on `<net>.1`) calling `helloworld` (server proxy and
 * `app` on `<net>.2`), with the resolver answering `helloworld` with that one endpoint.
 */
export async function startMesh(net: string, handler: RequestListener, options: { headersTimeoutMs?: number; resolveTimeoutMs?: number } = {}): Promise<Mesh> {
  const pki = await TestPki.create();
  const resolver = new TestResolver();
  const app = await startApp(`${net}.2`, handler);
  const server = await startProxy({ ip: `${net}.2`, pod: 'helloworld-v1-5d6f7c8b9-abcde', identity: await pki.identity('helloworld'), resolver, ...options });
  const client = await startProxy({ ip: `${net}.1`, pod: 'sleep-7b9c8d6f5-vwxyz', identity: await pki.identity('sleep'), resolver, ...options });
  resolver.set('helloworld', service('helloworld', [server.endpoint(app.port, spiffe('helloworld'))]));
  return {
    pki,
    resolver,
    client,
    server,
    app,
    close: async () => {
      await client.close();
      await server.close();
      await app.close();
    },
  };
}
