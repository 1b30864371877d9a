// The endpoint stage for HTTP: sends one call to the endpoint it was handed, over the pooled HTTP/2
// mTLS session to that endpoint's proxy, or as plain HTTP/1.1 to an unmeshed endpoint (or an
// address the app named directly). Bodies stream both ways; nothing is buffered. What happens is
// reported to the endpoint's handle; a connect that fails before anything was sent goes to `retry`.
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import http2, { type ClientHttp2Session } from 'node:http2';
import type { Logger } from 'pino';
import type { HttpSeries, MetricLabels, ProxyMetrics } from '../../metrics.js';
import { countedAgent } from '../../transport/agent.js';
import { appendVia, endToEndHeaders, MESH_HEADERS } from '../../transport/headers.js';
import { refuse, Refusal, type HttpCall } from '../call.js';
import type { EndpointHandle } from '../concrete/balancer.js';
import type { Pick, RouteEndpoint } from '../concrete/route-endpoint.js';
import type { MeshConnector } from './connector.js';
import { describeEndpoint } from './target.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;
/** Errors that mean the connection was never made, so nothing of the request went out. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

export interface HttpEndpointOptions {
  cluster: string;
  /** The port peers' proxies take mTLS on when discovery names none. */
  peerInboundPort: number;
  connector: MeshConnector;
  metrics: ProxyMetrics;
  log: Logger;
  /** This proxy's Via entry (known once it listens). */
  via(): string;
}

type Retry = (err: Error) => void;

export class HttpEndpoint {
  private readonly plainAgent: http.Agent;

  constructor(private readonly o: HttpEndpointOptions) {
    this.plainAgent = countedAgent(o.metrics.tcpSeries({ direction: 'outbound', peer: 'dst', tls: 'no_identity', no_tls_reason: 'not_provided_by_service_discovery', src_cluster: o.cluster }));
  }

  /** Sends the call to the picked endpoint. */
  forward(call: HttpCall, pick: Pick, retry: Retry): void {
    const endpoint = pick.target;
    const target = endpoint.meshTarget(this.o.peerInboundPort);
    if (!target) return this.plain(call, endpoint.endpoint, endpoint.httpSeries(), pick, retry);
    const session = this.o.connector.connectedSession(target);
    if (session) return this.mesh(session, call, pick, retry);
    this.o.connector
      .session(target, sessionLabels(endpoint))
      .then((s) => this.mesh(s, call, pick, retry), retry)
      .catch((err: unknown) => this.internalError(call, err));
  }

  /** Sends the call to an address the app named itself: no balancer, no retry. */
  direct(call: HttpCall, to: { address: string; port: number }, series: HttpSeries): void {
    this.plain(call, to, series, unbalanced(series), undefined);
  }

  /** A bug must not take the proxy down: the call fails with 502 and the error is logged. */
  internalError(call: HttpCall, err: unknown): void {
    this.o.log.error({ err }, 'internal error while proxying a request');
    refuse(call.res, undefined, new Refusal(502, `internal proxy error: ${(err as Error).message}`));
  }

  close(): void {
    this.plainAgent.destroy();
  }

  private mesh(session: ClientHttp2Session, call: HttpCall, pick: Pick, retry: Retry): void {
    const { req, res } = call;
    const endpoint = pick.target;
    const headers = endToEndHeaders(req.headers);
    headers[':method'] = req.method;
    headers[':scheme'] = 'http';
    headers[':authority'] = call.authority;
    headers[':path'] = call.path;
    headers[MESH_HEADERS.targetPort] = String(endpoint.endpoint.port);
    headers[MESH_HEADERS.clientCluster] = this.o.cluster;
    headers.via = appendVia(req.headers.via, this.o.via());
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: !call.hasBody });
    } catch (err) {
      // The session is going away; a fresh one is opened for the retry.
      this.o.connector.discard(session);
      return retry(err as Error);
    }
    pick.connected();
    const series = endpoint.httpSeries();
    series.requests++;
    let sentAt = performance.now();
    // Connecting is not the endpoint's latency: a new session's first request is timed from its
    // connection, as Linkerd's balancer times only endpoints that are ready.
    if (session.connecting) session.once('connect', () => (sentAt = performance.now()));
    let status = 0;
    let failure = '';

    if (call.expectContinue) stream.once('continue', () => res.writeContinue());
    stream.once('response', (h) => {
      status = Number(h[':status']);
      pick.finished(status, performance.now() - sentAt);
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
        pick.finished(0, performance.now() - sentAt);
        const why = failure || `the server's proxy reset the stream (HTTP/2 code ${stream.rstCode})`;
        return refuse(res, series, new Refusal(502, `${describeEndpoint(endpoint.endpoint)} failed before answering: ${why}`));
      }
      const complete = res.writableEnded && stream.rstCode === NGHTTP2_NO_ERROR;
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

  /** Plain HTTP/1.1; `retry` is absent where no other endpoint could be tried. */
  private plain(call: HttpCall, to: { address: string; port: number }, series: HttpSeries, handle: EndpointHandle, retry: Retry | undefined): void {
    const { req, res } = call;
    const headers = endToEndHeaders(req.headers);
    headers.host = call.authority;
    headers.via = appendVia(req.headers.via, this.o.via());
    if (call.hasBody && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    const upstream: ClientRequest = http.request({ host: to.address, port: to.port, method: req.method, path: call.path, headers, agent: this.plainAgent });
    series.requests++;
    const sentAt = performance.now();
    let status = 0;

    if (call.expectContinue) upstream.once('continue', () => res.writeContinue());
    upstream.once('response', (upRes: IncomingMessage) => {
      status = upRes.statusCode ?? 502;
      handle.connected();
      handle.finished(status, performance.now() - sentAt);
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
      const neverConnected = upstream.reusedSocket === false && CONNECT_ERRORS.has(err.code ?? '');
      if (retry && neverConnected && !call.hasBody) return retry(err);
      handle.finished(0, performance.now() - sentAt);
      refuse(res, series, new Refusal(502, `${to.address}:${to.port} failed before answering: ${err.message}`));
    });
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (call.hasBody) req.pipe(upstream);
    else upstream.end();
  }
}

/** A call to an address the app named: only its latency is recorded. */
function unbalanced(series: HttpSeries): EndpointHandle {
  return {
    connected() {},
    failed() {},
    finished(status, ms) {
      if (status > 0) series.latency(status, ms);
    },
  };
}

/** A pooled session is shared by every authority reaching that endpoint, so it carries only the peer's labels. */
function sessionLabels(endpoint: RouteEndpoint): MetricLabels {
  const { server_id, dst_pod, src_cluster, dst_cluster } = endpoint.labels;
  return { direction: 'outbound', peer: 'dst', tls: 'true', server_id, dst_pod, src_cluster, dst_cluster };
}
