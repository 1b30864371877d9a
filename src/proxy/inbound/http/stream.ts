// The inbound HTTP stage: one HTTP/2 stream from a client proxy. It checks what the stream asks
// for (a valid app port that is not the proxy's own, no loop), then hands the request to the app.
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { HttpSeries, ProxyMetrics } from '../../metrics.js';
import { appendVia, endToEndHeaders, MESH_HEADERS, viaIncludes } from '../../transport/headers.js';
import type { AppClient } from './app.js';
import { AppReply, respondError, type AppCall } from './reply.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** What is known of one client connection, looked up per request. */
export interface Peer {
  clientId: string;
  series: Map<string, HttpSeries>;
}

export interface HttpInboundOptions {
  cluster: string;
  metrics: ProxyMetrics;
  app: AppClient;
  /** The proxy's own ports: a request for one of them is refused (it would loop through the proxy). */
  reservedPorts: () => readonly number[];
  /** This proxy's listener as Via names it, and its Via entry (known once it listens). */
  hop: { receivedBy: string; via: string };
  warn(fields: object, message: string): void;
}

export class HttpInbound {
  constructor(private readonly o: HttpInboundOptions) {}

  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer: Peer | undefined): void {
    stream.on('error', () => {});
    if (!peer) return void stream.close(NGHTTP2_INTERNAL_ERROR);
    const { hop } = this.o;
    const authority = headers[':authority'] ?? '';
    const srcCluster = String(headers[MESH_HEADERS.clientCluster] ?? '');
    const series = this.seriesFor(peer, authority, srcCluster);
    series.requests++;
    const method = headers[':method'] ?? 'GET';
    const portText = String(headers[MESH_HEADERS.targetPort] ?? '');
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) return respondError(stream, series, 400, `the request names no valid app port (${MESH_HEADERS.targetPort}: "${portText}")`);
    if (this.o.reservedPorts().includes(port)) return respondError(stream, series, 403, `port ${port} belongs to the proxy, not the app`);
    if (viaIncludes(headers.via, hop.receivedBy)) {
      this.o.warn({ authority, via: headers.via }, 'loop detected');
      return respondError(stream, series, 508, `loop detected: the request already passed this proxy (${hop.receivedBy})`);
    }
    const appHeaders = endToEndHeaders(headers);
    appHeaders.host = authority;
    appHeaders.via = appendVia(headers.via, hop.via);
    const call: AppCall = { method, path: headers[':path'] ?? '/', port, headers: appHeaders, hasBody: !stream.endAfterHeaders };
    this.o.app.call(stream, call, new AppReply(stream, call, series));
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
}
