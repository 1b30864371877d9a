// The server stage for HTTP: what the app calls. An HTTP/1.1 forward proxy (absolute-form
// requests as clients send them with `http_proxy`, or origin-form with a Host header), CONNECT for
// opaque TCP, and WebSocket upgrades. A request goes on to the logical stage, or straight to the
// endpoint stage when it names an IP address or localhost; CONNECT and upgrades become tunnels.
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ProxyMetrics, TcpSeries } from '../../metrics.js';
import { appendVia, hasRequestBody, requestHead, requestTarget, splitAuthority, upgradeRequestHeaders, viaIncludes } from '../../transport/headers.js';
import { splice } from '../../transport/tunnel.js';
import { answerClientError, MAX_HEADER_BYTES, rawAnswer, refuse, Refusal, type HttpCall } from '../call.js';
import type { LogicalHttp } from '../logical/http.js';
import { isDirectHost, type Tunnels } from '../opaq/tunnel.js';

export interface HttpServerOptions {
  cluster: string;
  logical: LogicalHttp;
  tunnels: Tunnels;
  metrics: ProxyMetrics;
  log: Logger;
  /** This proxy's listener as Via names it, and its Via entry (known once it listens). */
  hop: { receivedBy: string; via: string };
  /** Keeps an app connection that became a tunnel, to close it with the proxy. */
  adopt(socket: Duplex): void;
  appConnections: TcpSeries;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export function httpServer(o: HttpServerOptions): http.Server {
  const server = http.createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: o.headersTimeoutMs,
    // Bodies may stream for as long as they need; only the headers are timed.
    requestTimeout: 0,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, o.headersTimeoutMs),
    noDelay: true,
  });
  const { hop } = o;
  const endpoint = o.logical.concrete.endpoint;

  const onRequest = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void => {
    const target = requestTarget(req.url ?? '', req.headers.host);
    if (!target) return refuse(res, undefined, new Refusal(400, 'the request names no target: send an absolute URL (http://service:port/path) or a Host header'));
    if (viaIncludes(req.headers.via, hop.receivedBy)) {
      o.log.warn({ authority: target.authority, via: req.headers.via }, 'loop detected');
      return refuse(res, undefined, new Refusal(508, `loop detected: the request already passed this proxy (${hop.receivedBy})`));
    }
    const authority = target.authority.toLowerCase();
    const call: HttpCall = { req, res, authority: target.authority, path: target.path, expectContinue, hasBody: hasRequestBody(req.headers) };
    const { host, port } = splitAuthority(authority);
    if (!isDirectHost(host)) return o.logical.route(call, authority);
    const series = o.metrics.httpSeries({ direction: 'outbound', authority: target.authority, tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery', src_cluster: o.cluster });
    endpoint.direct(call, { address: host, port: port ?? 80 }, series);
  };

  const tunnel = (socket: Duplex, authority: string, opened: (upstream: Duplex) => void): void => {
    o.tunnels.open(authority).then(opened, (err: Error) => rawAnswer(socket, err instanceof Refusal ? err.status : 502, err.message));
  };

  server.on('connection', (socket: net.Socket) => o.appConnections.track(socket));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, false));
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, true));
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    o.adopt(socket);
    const authority = (req.url ?? '').toLowerCase();
    const { host, port } = splitAuthority(authority);
    if (host === '' || port === undefined) return rawAnswer(socket, 400, `CONNECT needs host:port, got "${req.url}"`);
    tunnel(socket, authority, (upstream) => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      splice(socket, upstream);
    });
  });
  // A WebSocket (or other) upgrade: the request goes to the app as bytes over an opaque tunnel.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    o.adopt(socket);
    const target = requestTarget(req.url ?? '', req.headers.host);
    if (!target) return rawAnswer(socket, 400, 'the request names no target: send an absolute URL or a Host header');
    if (viaIncludes(req.headers.via, hop.receivedBy)) return rawAnswer(socket, 508, `loop detected: the request already passed this proxy (${hop.receivedBy})`);
    const headers: OutgoingHttpHeaders = { host: target.authority, ...upgradeRequestHeaders(req.rawHeaders) };
    headers.via = appendVia(req.headers.via, hop.via);
    const authority = target.authority.toLowerCase();
    tunnel(socket, splitAuthority(authority).port === undefined ? `${authority}:80` : authority, (upstream) => {
      upstream.write(requestHead(req.method ?? 'GET', target.path, headers));
      if (head.length > 0) upstream.write(head);
      splice(socket, upstream);
    });
  });
  server.on('clientError', answerClientError);
  return server;
}
