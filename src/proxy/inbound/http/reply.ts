// The app's answer on its way back over the HTTP/2 stream, and the answers the inbound proxy makes
// itself; both are recorded in the metrics.
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpSeries } from '../../metrics.js';
import { endToEndHeaders, proxyAnswer, responseHasNoBody, type HeaderObject } from '../../transport/headers.js';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

/** One request as the app gets it. */
export interface AppCall {
  method: string;
  path: string;
  port: number;
  headers: OutgoingHttpHeaders;
  hasBody: boolean;
}

/**
 * The app's answer, fed by whichever HTTP/1.1 client called the app. Trailers can only follow a
 * chunked HTTP/1.1 answer, so only such an answer leaves the stream open for them.
 */
export class AppReply {
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

/** Answers a stream with an error the proxy makes itself, or resets it if an answer is under way. */
export function respondError(stream: ServerHttp2Stream, series: HttpSeries, status: number, message: string): void {
  series.response(status, status >= 500);
  if (stream.closed) return;
  if (stream.headersSent) return void stream.close(NGHTTP2_INTERNAL_ERROR);
  const { body, headers } = proxyAnswer(message);
  stream.respond({ ':status': status, ...headers });
  stream.end(body);
}
