// The inbound side: mTLS from other proxies, then the app. Clients must present a certificate that
// chains to the trust bundle (plaintext and foreign-root clients fail the handshake, which is
// logged and counted). ALPN picks the protocol: `h2` carries HTTP requests, restored to HTTP/1.1
// for the app over a keep-alive pool; `strait-tcp` carries an opaque tunnel to an app port.
// The client's SPIFFE ID and cluster label the metrics.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import http2, { type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import type { Logger } from 'pino';
import { followRotation, peerSpiffeId, serverTlsOptions, type TlsIdentity } from '../identity/tls.js';
import { MESH_H2_SESSION_WINDOW, MESH_H2_SETTINGS } from './connector.js';
import { appendVia, endToEndHeaders, MESH_HEADERS, PROXY_ERROR_HEADER, responseHasNoBody, viaEntry, viaIncludes, type HeaderObject } from './headers.js';
import type { HttpSeries, ProxyMetrics, TcpSeries } from './metrics.js';
import { listen } from './outbound.js';
import { encodeLine, parseTunnelRequest, readLine, splice, TUNNEL_ALPN } from './tunnel.js';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

export interface InboundOptions {
  /** The pod's address: the listener binds to it and the app is called on it. */
  host: string;
  port: number;
  proxyName: string;
  cluster: string;
  identity: TlsIdentity;
  metrics: ProxyMetrics;
  log: Logger;
  /** The proxy's own ports: a request for one of them is refused (it would loop through the proxy). */
  reservedPorts: () => readonly number[];
  handshakeTimeoutMs?: number;
}

/** What is known of one client connection, looked up per request. */
interface Peer {
  clientId: string;
  series: Map<string, HttpSeries>;
}

export class InboundProxy {
  private readonly server: tls.Server;
  private readonly h2: http2.Http2Server;
  private readonly peers = new WeakMap<Http2Session, Peer>();
  private readonly sockets = new Set<TLSSocket>();
  /** Calls the app over a keep-alive pool per port. */
  private readonly appDispatcher: Agent;
  /** For requests with `Expect: 100-continue`, which need node:http. */
  private readonly expectAgent: http.Agent;
  private readonly origins = new Map<number, string>();
  private readonly appConnections: TcpSeries;
  private receivedBy = '';
  private via = '';
  private connecting: Peer | undefined;

  constructor(private readonly o: InboundOptions) {
    this.server = tls.createServer({
      ...serverTlsOptions(o.identity, { clientCert: 'require', alpn: ['h2', TUNNEL_ALPN] }),
      handshakeTimeout: o.handshakeTimeoutMs ?? 10_000,
    });
    followRotation(this.server, o.identity);
    this.h2 = http2.createServer({ settings: MESH_H2_SETTINGS });
    this.h2.on('session', (session: ServerHttp2Session) => {
      // Sessions are made synchronously from the 'connection' this proxy emits, so this is its peer.
      if (this.connecting) this.peers.set(session, this.connecting);
      session.setLocalWindowSize(MESH_H2_SESSION_WINDOW);
      session.on('error', () => session.destroy());
    });
    this.h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(stream, headers));
    this.h2.on('sessionError', () => {});
    this.appConnections = o.metrics.tcpSeries({ direction: 'inbound', peer: 'dst', tls: 'no_identity', no_tls_reason: 'loopback', dst_cluster: o.cluster });
    const connect = buildConnector({});
    this.appDispatcher = new Agent({
      // Idle connections to the app close before a Node server's 5 s keep-alive would close them under us.
      keepAliveTimeout: 4000,
      connect: (options, callback) =>
        connect(options, (...result) => {
          const socket = result[1];
          if (socket) {
            socket.setNoDelay(true);
            this.appConnections.track(socket);
          }
          callback(...result);
        }),
    });
    this.expectAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo', timeout: 4000 });
    const createConnection = this.expectAgent.createConnection.bind(this.expectAgent);
    this.expectAgent.createConnection = (options, callback) => {
      const socket = createConnection(options, callback) as net.Socket;
      this.appConnections.track(socket);
      return socket;
    };
    // Small writes (headers, short answers) must not wait for Nagle's algorithm.
    this.server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
    this.server.on('secureConnection', (socket: TLSSocket) => this.onConnection(socket));
    this.server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.o.metrics.tcpError('inbound', 'tls_handshake');
      this.o.log.warn({ client: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'refused a client that did not complete mTLS');
    });
  }

  async listen(): Promise<number> {
    await listen(this.server, this.o.port, this.o.host);
    const port = (this.server.address() as AddressInfo).port;
    this.receivedBy = `${this.o.proxyName}:${port}`;
    this.via = viaEntry(this.receivedBy);
    return port;
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.expectAgent.destroy();
    await this.appDispatcher.destroy();
  }

  private onConnection(socket: TLSSocket): void {
    const clientId = peerSpiffeId(socket);
    if (clientId === undefined) {
      // With client certificates required this cannot happen; refuse rather than trust it.
      this.o.log.warn({ client: socket.remoteAddress }, 'refused a client without a SPIFFE ID');
      return void socket.destroy();
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    this.o.metrics.tcpSeries({ direction: 'inbound', peer: 'src', tls: 'true', client_id: clientId, dst_cluster: this.o.cluster }).track(socket);
    if (socket.alpnProtocol === TUNNEL_ALPN) return void this.onTunnel(socket, clientId);
    if (socket.alpnProtocol !== 'h2') return void socket.destroy();
    this.connecting = { clientId, series: new Map() };
    this.h2.emit('connection', socket);
    this.connecting = undefined;
  }

  private appOrigin(port: number): string {
    let origin = this.origins.get(port);
    if (!origin) this.origins.set(port, (origin = `http://${this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host}:${port}`));
    return origin;
  }

  private seriesFor(peer: Peer, authority: string, srcCluster: string): HttpSeries {
    const key = `${authority}\u0000${srcCluster}`;
    let series = peer.series.get(key);
    if (!series) {
      series = this.o.metrics.httpSeries({ direction: 'inbound', authority, tls: 'true', client_id: peer.clientId, src_cluster: srcCluster, dst_cluster: this.o.cluster });
      peer.series.set(key, series);
    }
    return series;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const peer = this.peers.get(stream.session!);
    if (!peer) return void stream.close(NGHTTP2_INTERNAL_ERROR);
    const authority = headers[':authority'] ?? '';
    const srcCluster = String(headers[MESH_HEADERS.clientCluster] ?? '');
    const series = this.seriesFor(peer, authority, srcCluster);
    series.requests++;
    const method = headers[':method'] ?? 'GET';
    const portText = String(headers[MESH_HEADERS.targetPort] ?? '');
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) return respondError(stream, series, 400, `the request names no valid app port (${MESH_HEADERS.targetPort}: "${portText}")`);
    if (this.o.reservedPorts().includes(port)) return respondError(stream, series, 403, `port ${port} belongs to the proxy, not the app`);
    if (viaIncludes(headers.via, this.receivedBy)) {
      this.o.log.warn({ authority, via: headers.via }, 'loop detected');
      return respondError(stream, series, 508, `loop detected: the request already passed this proxy (${this.receivedBy})`);
    }
    const appHeaders = endToEndHeaders(headers);
    appHeaders.host = authority;
    appHeaders.via = appendVia(headers.via, this.via);
    const call: AppCall = { method, path: headers[':path'] ?? '/', port, headers: appHeaders, hasBody: !stream.endAfterHeaders };
    const reply = new AppReply(stream, call, series);
    if (appHeaders.expect === undefined) this.dispatchToApp(stream, call, reply);
    else this.requestWithExpect(stream, call, reply);
  }

  /** The usual way to the app: undici's pool, the cheaper HTTP/1.1 client per request. */
  private dispatchToApp(stream: ServerHttp2Stream, call: AppCall, reply: AppReply): void {
    let controller: { abort(reason: Error): void; pause(): void; resume(): void } | undefined;
    let done = false;
    // The client went away (or the stream broke): stop the app's work and drop its connection.
    stream.once('close', () => {
      if (!done) controller?.abort(new Error('the client proxy cancelled the request'));
    });
    try {
      this.appDispatcher.dispatch(
        {
          origin: this.appOrigin(call.port),
          method: call.method,
          path: call.path,
          headers: call.headers as Record<string, string | string[]>,
          // undici destroys a stream body once it has read it, which would reset the HTTP/2 stream
          // before the answer goes out: it reads a pass-through instead.
          body: call.hasBody ? stream.pipe(new PassThrough()) : null,
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        {
          onRequestStart: (c) => (controller = c),
          onResponseStart: (c, status, headers) => {
            if (status < 200) return; // 1xx: undici moves on to the final answer
            if (!reply.start(status, headers)) c.abort(new Error('the client proxy is gone'));
          },
          onResponseData: (c, chunk) => {
            if (reply.write(chunk)) return;
            c.pause();
            stream.once('drain', () => c.resume());
          },
          onResponseEnd: (_c, trailers) => {
            done = true;
            reply.end(trailers);
          },
          onResponseError: (_c, err) => {
            done = true;
            reply.fail(err.message);
          },
        },
      );
    } catch (err) {
      done = true;
      reply.refuse(400, `the request cannot be passed on as HTTP/1.1: ${(err as Error).message}`);
    }
  }

  /**
   * A request that announced its body with `Expect: 100-continue` (undici cannot relay that over
   * HTTP/1.1): node:http sends the expectation on and the app's `100 Continue` comes back as an
   * HTTP/2 informational response, so the client sends its body only if the app wants it.
   */
  private requestWithExpect(stream: ServerHttp2Stream, call: AppCall, reply: AppReply): void {
    const headers = { ...call.headers };
    if (call.hasBody && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    let request: http.ClientRequest;
    try {
      request = http.request({ host: this.o.host, port: call.port, method: call.method, path: call.path, headers, agent: this.expectAgent });
    } catch (err) {
      return reply.refuse(400, `the request cannot be passed on as HTTP/1.1: ${(err as Error).message}`);
    }
    let response: IncomingMessage | undefined;
    request.once('continue', () => {
      if (!stream.closed && !stream.headersSent) stream.additionalHeaders({ ':status': 100 });
    });
    request.once('response', (res: IncomingMessage) => {
      response = res;
      if (!reply.start(res.statusCode ?? 502, res.headers)) return void res.destroy();
      res.on('data', (chunk: Buffer) => {
        if (reply.write(chunk)) return;
        res.pause();
        stream.once('drain', () => res.resume());
      });
      res.once('end', () => reply.end(res.trailers));
      res.once('close', () => {
        if (!res.complete) reply.fail('the app closed the connection mid-response');
      });
    });
    request.on('error', (err: Error) => {
      if (!response) reply.fail(err.message); // a break mid-response is handled by the response's close
    });
    stream.once('close', () => {
      if (!response?.complete) request.destroy();
    });
    if (call.hasBody) stream.pipe(request);
    else request.end();
  }

  /** An opaque tunnel: read the header naming the app port, connect, confirm, then splice. */
  private onTunnel(socket: TLSSocket, clientId: string): void {
    readLine(socket, this.o.handshakeTimeoutMs ?? 10_000).then(
      (line) => {
        const request = parseTunnelRequest(line);
        if (typeof request === 'string') return refuseTunnel(socket, request);
        if (this.o.reservedPorts().includes(request.port)) return refuseTunnel(socket, `port ${request.port} belongs to the proxy, not the app`);
        const app = net.connect({ host: this.o.host, port: request.port, noDelay: true });
        this.appConnections.track(app);
        app.once('connect', () => {
          app.removeAllListeners('error');
          socket.write(encodeLine({ ok: true }));
          splice(socket, app);
        });
        app.once('error', (err) => {
          this.o.log.info({ client: clientId, port: request.port, err: err.message }, 'tunnel to the app failed');
          refuseTunnel(socket, `cannot connect to the app on port ${request.port}: ${err.message}`);
        });
      },
      (err: Error) => refuseTunnel(socket, err.message),
    );
  }
}

interface AppCall {
  method: string;
  path: string;
  port: number;
  headers: OutgoingHttpHeaders;
  hasBody: boolean;
}

/**
 * The app's answer on its way back over the HTTP/2 stream, fed by whichever HTTP/1.1 client
 * called the app; it also records the answer in the metrics. Trailers can only follow a chunked
 * HTTP/1.1 answer, so only such an answer leaves the stream open for them.
 */
class AppReply {
  private status = 0;
  private trailers: OutgoingHttpHeaders | undefined;
  private readonly startedAt = performance.now();

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly call: AppCall,
    private readonly series: HttpSeries,
  ) {}

  /** The app's status and headers; false when the stream is gone and the answer should be dropped. */
  start(status: number, appHeaders: HeaderObject): boolean {
    this.status = status;
    this.series.latency(status, performance.now() - this.startedAt);
    if (this.stream.closed) return false;
    const headers = endToEndHeaders(appHeaders);
    headers[':status'] = status;
    const noBody = responseHasNoBody(this.call.method, status);
    const mayHaveTrailers = !noBody && appHeaders['content-length'] === undefined;
    try {
      this.stream.respond(headers, { endStream: noBody, waitForTrailers: mayHaveTrailers });
    } catch (err) {
      this.refuse(502, `the app's response cannot be passed on: ${(err as Error).message}`);
      return false;
    }
    if (mayHaveTrailers) {
      this.stream.once('wantTrailers', () => {
        try {
          this.stream.sendTrailers(this.trailers ?? {});
        } catch {
          this.stream.close(NGHTTP2_NO_ERROR);
        }
      });
    }
    return true;
  }

  /** A chunk of the body; false when the stream wants the sender to wait for 'drain'. */
  write(chunk: Buffer): boolean {
    return this.stream.closed || this.stream.write(chunk);
  }

  end(trailers: HeaderObject): void {
    const passed = endToEndHeaders(trailers);
    if (Object.keys(passed).length > 0) this.trailers = passed;
    if (!this.stream.closed) this.stream.end();
    this.series.response(this.status, this.status >= 500);
  }

  /** The app failed: 502 if nothing was answered yet, else the stream is reset (the client sees a broken answer). */
  fail(reason: string): void {
    if (this.status === 0) return this.refuse(502, `the app on port ${this.call.port} failed before answering: ${reason}`);
    if (!this.stream.closed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
    this.series.response(this.status, true);
  }

  refuse(status: number, message: string): void {
    this.status = status;
    respondError(this.stream, this.series, status, message);
  }
}

function refuseTunnel(socket: TLSSocket, reason: string): void {
  if (socket.writable) socket.end(encodeLine({ error: reason }));
  else socket.destroy();
}

/** Answers a stream with an error the proxy makes itself, or resets it if an answer is under way. */
function respondError(stream: ServerHttp2Stream, series: HttpSeries, status: number, message: string): void {
  series.response(status, status >= 500);
  if (stream.closed) return;
  if (stream.headersSent) return void stream.close(NGHTTP2_INTERNAL_ERROR);
  const body = `${message}\n`;
  stream.respond({
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [PROXY_ERROR_HEADER]: message.replace(/[^\x20-\x7e]/g, '?'),
  });
  stream.end(body);
}
