// The outbound side: what the app calls. An HTTP/1.1 forward proxy (absolute-form requests as
// clients send them with `http_proxy`, or origin-form with a Host header), CONNECT for opaque TCP,
// WebSocket upgrades, and explicit TCP listeners. Each call's authority is resolved to a route;
// a backend is picked by weight and an endpoint by the balancer; the call goes over the pooled
// HTTP/2 mTLS session to that endpoint's proxy (or, for an unmeshed endpoint, straight to it).
// Bodies stream both ways; nothing is buffered.
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import http2, { type ClientHttp2Session } from 'node:http2';
import net, { isIP, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { EndpointState } from './balancer.js';
import { ConnectFailed, type MeshConnector } from './connector.js';
import {
  appendVia,
  endToEndHeaders,
  hasRequestBody,
  MESH_HEADERS,
  PROXY_ERROR_HEADER,
  requestHead,
  requestTarget,
  splitAuthority,
  upgradeRequestHeaders,
  viaEntry,
  viaIncludes,
} from './headers.js';
import type { HttpSeries, MetricLabels, ProxyMetrics, TcpSeries } from './metrics.js';
import type { Pick, Route, RouteEndpoint, RouteTable } from './routes.js';
import { splice } from './tunnel.js';
import type { OutboundListener } from './config.js';

/** Requests with headers larger than this get 431. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Endpoints tried per request when connecting fails. */
const MAX_ATTEMPTS = 3;
const { NGHTTP2_CANCEL } = http2.constants;

export interface OutboundOptions {
  host: string;
  port: number;
  /** `<pod>.<namespace>.<cluster>`: names this proxy in Via headers, with the port. */
  proxyName: string;
  cluster: string;
  /** The port peers' proxies take mTLS on when discovery names none. */
  peerInboundPort: number;
  tcpListeners: OutboundListener[];
  routes: RouteTable;
  connector: MeshConnector;
  metrics: ProxyMetrics;
  log: Logger;
  /** How long a request waits for discovery's first answer about a name. */
  resolveTimeoutMs?: number;
  /** A client must send its request headers within this; idle and slow clients are cut off. */
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

/** A request the proxy answers itself, with the status and the reason. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 503: 'Service Unavailable', 508: 'Loop Detected' };

/** A header value cannot hold control or non-ASCII characters. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** An answer written straight to a socket (for CONNECT, upgrades, and requests the parser refused). */
function rawAnswer(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `${PROXY_ERROR_HEADER}: ${headerSafe(message)}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** Answers a request the HTTP parser could not accept: 431 for huge headers, 408 for slow ones, else 400. */
function answerClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET') return void socket.destroy();
  if (err.code === 'HPE_HEADER_OVERFLOW') return rawAnswer(socket, 431, `the request headers are larger than ${MAX_HEADER_BYTES} bytes`);
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return rawAnswer(socket, 408, 'the request headers did not arrive in time');
  rawAnswer(socket, 400, `malformed request: ${err.reason ?? err.message}`);
}

/** Names that skip discovery: an IP address or localhost is called directly, in plaintext. */
function isDirectHost(host: string): boolean {
  return isIP(host) !== 0 || host === 'localhost';
}

export class OutboundProxy {
  private readonly server: http.Server;
  private readonly tcpServers: net.Server[] = [];
  private readonly plainAgent: http.Agent;
  /** App connections that became tunnels (CONNECT, upgrades, TCP listeners): the HTTP server no longer tracks them. */
  private readonly tunnels = new Set<Duplex>();
  private readonly resolveTimeoutMs: number;
  private readonly appConnections: TcpSeries;
  private readonly plainConnections: TcpSeries;
  private receivedBy = '';
  private via = '';

  constructor(private readonly o: OutboundOptions) {
    this.resolveTimeoutMs = o.resolveTimeoutMs ?? 5000;
    const headersTimeout = o.headersTimeoutMs ?? 10_000;
    this.server = http.createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout,
      // Bodies may stream for as long as they need; only the headers are timed.
      requestTimeout: 0,
      keepAliveTimeout: o.keepAliveTimeoutMs ?? 60_000,
      connectionsCheckingInterval: Math.min(1000, headersTimeout),
      noDelay: true,
    });
    this.appConnections = o.metrics.tcpSeries({ direction: 'outbound', peer: 'src', tls: 'no_identity', no_tls_reason: 'loopback', src_cluster: o.cluster });
    const plainConnections = (this.plainConnections = o.metrics.tcpSeries({ direction: 'outbound', peer: 'dst', tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery', src_cluster: o.cluster }));
    this.plainAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo', timeout: 4000 });
    const createConnection = this.plainAgent.createConnection.bind(this.plainAgent);
    this.plainAgent.createConnection = (options, callback) => {
      const socket = createConnection(options, callback) as net.Socket;
      plainConnections.track(socket);
      return socket;
    };
    this.server.on('connection', (socket: net.Socket) => this.appConnections.track(socket));
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, false));
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, true));
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onConnect(req, socket, head));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', answerClientError);
  }

  async listen(): Promise<{ port: number; tcp: number[] }> {
    await listen(this.server, this.o.port, this.o.host);
    const port = (this.server.address() as AddressInfo).port;
    this.receivedBy = `${this.o.proxyName}:${port}`;
    this.via = viaEntry(this.receivedBy);
    const tcp: number[] = [];
    for (const listener of this.o.tcpListeners) {
      const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.onTcpConnection(socket, listener.target));
      this.tcpServers.push(server);
      await listen(server, listener.port, this.o.host);
      tcp.push((server.address() as AddressInfo).port);
    }
    return { port, tcp };
  }

  async close(): Promise<void> {
    const servers = [this.server, ...this.tcpServers];
    const closed = Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    this.server.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    this.plainAgent.destroy();
    await closed;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const target = requestTarget(req.url ?? '', req.headers.host);
    if (!target) return this.refuse(res, undefined, new Refusal(400, 'the request names no target: send an absolute URL (http://service:port/path) or a Host header'));
    if (viaIncludes(req.headers.via, this.receivedBy)) {
      this.o.log.warn({ authority: target.authority, via: req.headers.via }, 'loop detected');
      return this.refuse(res, undefined, new Refusal(508, `loop detected: the request already passed this proxy (${this.receivedBy})`));
    }
    const authority = target.authority.toLowerCase();
    const call: Call = { req, res, authority: target.authority, path: target.path, expectContinue, hasBody: hasRequestBody(req.headers), tried: undefined, lastError: '' };
    const { host, port } = splitAuthority(authority);
    if (isDirectHost(host)) return this.forwardPlain(call, { address: host, port: port ?? 80 }, this.directSeries(target.authority), undefined);
    const route = this.o.routes.get(authority);
    if (route.destination) return this.dispatch(route, call);
    route
      .resolve(this.resolveTimeoutMs)
      .then(() => this.dispatch(route, call))
      .catch((err: unknown) => this.internalError(call.res, err));
  }

  /** A bug must not take the proxy down: the call fails with 502 and the error is logged. */
  private internalError(res: ServerResponse, err: unknown): void {
    this.o.log.error({ err }, 'internal error while proxying a request');
    this.refuse(res, undefined, new Refusal(502, `internal proxy error: ${(err as Error).message}`));
  }

  private directSeries(authority: string): HttpSeries {
    return this.o.metrics.httpSeries({ direction: 'outbound', authority, tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery', src_cluster: this.o.cluster });
  }

  /** Sends the call to an endpoint of `route`, trying others while connecting fails. */
  private dispatch(route: Route, call: Call): void {
    if (call.res.destroyed) return; // the client left while the name was being resolved
    const pick = route.pick(call.tried);
    if ('problem' in pick) {
      const series = route.unroutedSeries();
      const refusal = call.tried ? new Refusal(502, call.lastError) : new Refusal(503, pick.problem);
      return this.refuse(call.res, series, refusal);
    }
    const endpoint = pick.state.target;
    const target = endpoint.meshTarget(this.o.peerInboundPort);
    if (!target) return this.forwardPlain(call, endpoint.endpoint, endpoint.httpSeries(), { route, pick });
    const session = this.o.connector.connectedSession(target);
    if (session) return this.forwardMesh(session, call, route, pick);
    this.o.connector
      .session(target, sessionLabels(endpoint))
      .then(
        (s) => this.forwardMesh(s, call, route, pick),
        (err: Error) => this.connectFailed(call, route, pick, err),
      )
      .catch((err: unknown) => this.internalError(call.res, err));
  }

  /** Connecting to the picked endpoint failed before anything was sent: back it off, try another. */
  private connectFailed(call: Call, route: Route, pick: Pick, err: Error): void {
    pick.backend.balancer.connectFailed(pick.state, err instanceof ConnectFailed && err.unreachable);
    this.o.log.info({ authority: call.authority, endpoint: pick.state.key, err: err.message }, 'connect failed; trying another endpoint');
    call.tried ??= new Set();
    call.tried.add(pick.state);
    call.lastError = err.message;
    if (call.tried.size >= MAX_ATTEMPTS) return this.refuse(call.res, pick.state.target.httpSeries(), new Refusal(502, err.message));
    this.dispatch(route, call);
  }

  private forwardMesh(session: ClientHttp2Session, call: Call, route: Route, pick: Pick): void {
    const { req, res } = call;
    const endpoint = pick.state.target;
    const headers = endToEndHeaders(req.headers);
    headers[':method'] = req.method;
    headers[':scheme'] = 'http';
    headers[':authority'] = call.authority;
    headers[':path'] = call.path;
    headers[MESH_HEADERS.targetPort] = String(endpoint.endpoint.port);
    headers[MESH_HEADERS.clientCluster] = this.o.cluster;
    headers.via = appendVia(req.headers.via, this.via);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: !call.hasBody });
    } catch (err) {
      // The session is going away; a fresh one is opened for the retry.
      this.o.connector.discard(session);
      return this.connectFailed(call, route, pick, err as Error);
    }
    pick.backend.balancer.connected(pick.state);
    const balancer = pick.backend.balancer;
    const state = pick.state;
    const series = endpoint.httpSeries();
    series.requests++;
    let startedAt = balancer.started(state);
    // Connecting is not the endpoint's latency: a new session's first request is timed from its
    // connection, as Linkerd's balancer times only endpoints that are ready.
    if (session.connecting) session.once('connect', () => (startedAt = balancer.clock()));
    let status = 0;
    let failure = '';

    if (call.expectContinue) stream.once('continue', () => res.writeContinue());
    stream.once('response', (h) => {
      status = Number(h[':status']);
      balancer.finished(state, startedAt);
      series.latency(status, balancer.clock() - startedAt);
      try {
        res.writeHead(status, endToEndHeaders(h));
      } catch (err) {
        failure = `the response cannot be passed on as HTTP/1.1: ${(err as Error).message}`;
        return void stream.close(NGHTTP2_CANCEL);
      }
      stream.pipe(res, { end: false });
    });
    stream.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
      try {
        res.addTrailers(endToEndHeaders(trailers));
      } catch (err) {
        this.o.log.info({ authority: call.authority, err: (err as Error).message }, 'dropped trailers that HTTP/1.1 cannot carry');
      }
    });
    stream.once('end', () => res.end());
    stream.on('error', (err: Error) => (failure = err.message));
    stream.once('close', () => {
      if (status === 0) {
        balancer.finished(state, startedAt);
        const why = failure || `the server's proxy reset the stream (HTTP/2 code ${stream.rstCode})`;
        return this.refuse(res, series, new Refusal(502, `${describeEndpoint(endpoint)} failed before answering: ${why}`));
      }
      const complete = res.writableEnded && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR;
      if (!complete) res.destroy();
      series.response(status, !complete || status >= 500);
    });
    res.once('close', () => {
      // The client went away before its answer was complete.
      if (!res.writableFinished && !stream.closed) stream.close(NGHTTP2_CANCEL);
    });
    if (call.hasBody) {
      req.pipe(stream);
      req.once('aborted', () => stream.close(NGHTTP2_CANCEL));
    }
  }

  /** Plain HTTP/1.1 to an unmeshed endpoint or an address the app named directly. */
  private forwardPlain(call: Call, to: { address: string; port: number }, series: HttpSeries, routed: { route: Route; pick: Pick } | undefined): void {
    const { req, res } = call;
    const headers = endToEndHeaders(req.headers);
    headers.host = call.authority;
    headers.via = appendVia(req.headers.via, this.via);
    if (call.hasBody && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    const upstream = http.request({ host: to.address, port: to.port, method: req.method, path: call.path, headers, agent: this.plainAgent });
    const state: EndpointState<RouteEndpoint> | undefined = routed?.pick.state;
    const balancer = routed?.pick.backend.balancer;
    series.requests++;
    const startedAt = performance.now();
    if (state) balancer!.started(state);
    let status = 0;

    if (call.expectContinue) upstream.once('continue', () => res.writeContinue());
    upstream.once('response', (upRes) => {
      status = upRes.statusCode ?? 502;
      if (state) {
        balancer!.connected(state);
        balancer!.finished(state, startedAt);
      }
      series.latency(status, performance.now() - startedAt);
      try {
        res.writeHead(status, endToEndHeaders(upRes.headers));
      } catch {
        return void upstream.destroy();
      }
      upRes.pipe(res, { end: false });
      upRes.once('end', () => {
        if (upRes.rawTrailers.length > 0) res.addTrailers(endToEndHeaders(upRes.trailers));
        res.end();
      });
      upRes.once('close', () => {
        if (!upRes.complete) res.destroy();
        series.response(status, !upRes.complete || status >= 500);
      });
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (status !== 0) return; // the response's own close handles a break mid-body
      if (state) balancer!.finished(state, startedAt);
      const neverConnected = upstream.reusedSocket === false && CONNECT_ERRORS.has(err.code ?? '');
      if (routed && neverConnected && !call.hasBody) return this.connectFailed(call, routed.route, routed.pick, err);
      this.refuse(res, series, new Refusal(502, `${to.address}:${to.port} failed before answering: ${err.message}`));
    });
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (call.hasBody) req.pipe(upstream);
    else upstream.end();
  }

  /** Answers the call itself; a response already under way is cut off instead. */
  private refuse(res: ServerResponse, series: HttpSeries | undefined, refusal: Refusal): void {
    if (series) {
      series.requests++;
      series.response(refusal.status, refusal.status >= 500);
    }
    if (res.headersSent) return void res.destroy();
    const body = `${refusal.message}\n`;
    res.writeHead(refusal.status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      [PROXY_ERROR_HEADER]: headerSafe(refusal.message),
    });
    res.end(body);
  }

  /** Keeps `socket` (an app connection the HTTP server let go of) until it closes, to close it with the proxy. */
  private adopt(socket: Duplex): void {
    socket.on('error', () => socket.destroy());
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
  }

  private onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.adopt(socket);
    const authority = (req.url ?? '').toLowerCase();
    const { host, port } = splitAuthority(authority);
    if (host === '' || port === undefined) return rawAnswer(socket, 400, `CONNECT needs host:port, got "${req.url}"`);
    this.openTunnel(authority).then(
      (upstream) => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        splice(socket, upstream);
      },
      (err: Error) => rawAnswer(socket, err instanceof Refusal ? err.status : 502, err.message),
    );
  }

  /** A WebSocket (or other) upgrade: the request goes to the app as bytes over an opaque tunnel. */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.adopt(socket);
    const target = requestTarget(req.url ?? '', req.headers.host);
    if (!target) return rawAnswer(socket, 400, 'the request names no target: send an absolute URL or a Host header');
    if (viaIncludes(req.headers.via, this.receivedBy)) return rawAnswer(socket, 508, `loop detected: the request already passed this proxy (${this.receivedBy})`);
    const headers: OutgoingHttpHeaders = { host: target.authority, ...upgradeRequestHeaders(req.rawHeaders) };
    headers.via = appendVia(req.headers.via, this.via);
    const authority = target.authority.toLowerCase();
    const withPort = splitAuthority(authority).port === undefined ? `${authority}:80` : authority;
    this.openTunnel(withPort).then(
      (upstream) => {
        upstream.write(requestHead(req.method ?? 'GET', target.path, headers));
        if (head.length > 0) upstream.write(head);
        splice(socket, upstream);
      },
      (err: Error) => rawAnswer(socket, err instanceof Refusal ? err.status : 502, err.message),
    );
  }

  private onTcpConnection(socket: net.Socket, target: string): void {
    this.appConnections.track(socket);
    this.adopt(socket);
    this.openTunnel(target.toLowerCase()).then(
      (upstream) => splice(socket, upstream),
      (err: Error) => {
        this.o.log.info({ target, err: err.message }, 'outbound TCP connection refused');
        socket.destroy();
      },
    );
  }

  /** An opaque connection to an endpoint of `authority` (host:port), trying others while connecting fails. */
  private async openTunnel(authority: string): Promise<Duplex> {
    const { host, port } = splitAuthority(authority);
    if (isDirectHost(host)) {
      try {
        const socket = await connectTcp(host, port ?? 80);
        this.plainConnections.track(socket);
        return socket;
      } catch (err) {
        throw new Refusal(502, `cannot connect to ${authority}: ${(err as Error).message}`);
      }
    }
    const route = this.o.routes.get(authority);
    await route.resolve(this.resolveTimeoutMs);
    const tried = new Set<EndpointState<RouteEndpoint>>();
    let lastError = '';
    for (;;) {
      const pick = route.pick(tried);
      if ('problem' in pick) throw tried.size > 0 ? new Refusal(502, lastError) : new Refusal(503, pick.problem);
      const { balancer } = pick.backend;
      const endpoint = pick.state.target;
      const target = endpoint.meshTarget(this.o.peerInboundPort);
      try {
        const labels: MetricLabels = { ...endpoint.labels, authority: undefined, peer: 'dst' };
        let upstream: Duplex;
        if (target) {
          upstream = await this.o.connector.tunnel(target, endpoint.endpoint.port, labels);
        } else {
          const socket = await connectTcp(endpoint.endpoint.address, endpoint.endpoint.port);
          this.o.metrics.tcpSeries(labels).track(socket);
          upstream = socket;
        }
        balancer.connected(pick.state);
        return upstream;
      } catch (err) {
        balancer.connectFailed(pick.state, err instanceof ConnectFailed && err.unreachable);
        tried.add(pick.state);
        lastError = err instanceof ConnectFailed ? err.message : `cannot connect to ${describeEndpoint(endpoint)}: ${(err as Error).message}`;
        this.o.log.info({ authority, endpoint: pick.state.key, err: lastError }, 'tunnel connect failed');
        if (tried.size >= MAX_ATTEMPTS) throw new Refusal(502, lastError);
      }
    }
  }
}

interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  /** As the client wrote it; it becomes the app's Host. */
  authority: string;
  path: string;
  expectContinue: boolean;
  hasBody: boolean;
  /** Endpoints whose connect failed for this call. */
  tried: Set<EndpointState<RouteEndpoint>> | undefined;
  lastError: string;
}

/** Errors that mean the connection was never made, so nothing of the request went out. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

/** A pooled session is shared by every authority reaching that endpoint, so it carries only the peer's labels. */
function sessionLabels(endpoint: RouteEndpoint): MetricLabels {
  const { server_id, dst_pod, src_cluster, dst_cluster } = endpoint.labels;
  return { direction: 'outbound', peer: 'dst', tls: 'true', server_id, dst_pod, src_cluster, dst_cluster };
}

function describeEndpoint(endpoint: RouteEndpoint): string {
  const e = endpoint.endpoint;
  return `${e.pod ?? e.address} (${e.address}:${e.port}${e.identity ? `, ${e.identity}` : ''})`;
}

function connectTcp(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
