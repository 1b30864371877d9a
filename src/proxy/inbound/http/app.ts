// The inbound HTTP stage's last step: the request, restored to HTTP/1.1, to the app on the pod's
// address, over undici's keep-alive pool per port (node:http for `Expect: 100-continue`), and the
// answer back through an AppReply.
import http, { type IncomingMessage } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { PassThrough } from 'node:stream';
import { Agent, buildConnector } from 'undici';
import type { TcpSeries } from '../../metrics.js';
import { countedAgent } from '../../transport/agent.js';
import type { AppCall, AppReply } from './reply.js';

export class AppClient {
  /** Calls the app over a keep-alive pool per port. */
  private readonly dispatcher: Agent;
  /** For requests with `Expect: 100-continue`, which need node:http. */
  private readonly expectAgent: http.Agent;
  private readonly origins = new Map<number, string>();

  constructor(
    /** The pod's address. */
    private readonly host: string,
    appConnections: TcpSeries,
  ) {
    const connect = buildConnector({});
    this.dispatcher = new Agent({
      // Idle connections to the app close before a Node server's 5 s keep-alive would close them under us.
      keepAliveTimeout: 4000,
      connect: (options, callback) =>
        connect(options, (...result) => {
          const socket = result[1];
          if (socket) {
            socket.setNoDelay(true);
            appConnections.track(socket);
          }
          callback(...result);
        }),
    });
    this.expectAgent = countedAgent(appConnections);
  }

  /** Calls the app with `call` (from `stream`), answering through `reply`. */
  call(stream: ServerHttp2Stream, call: AppCall, reply: AppReply): void {
    if (call.headers.expect === undefined) this.dispatch(stream, call, reply);
    else this.requestWithExpect(stream, call, reply);
  }

  async close(): Promise<void> {
    this.expectAgent.destroy();
    await this.dispatcher.destroy();
  }

  private origin(port: number): string {
    let origin = this.origins.get(port);
    if (!origin) this.origins.set(port, (origin = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${port}`));
    return origin;
  }

  /** The usual way to the app: undici's pool, the cheaper HTTP/1.1 client per request. */
  private dispatch(stream: ServerHttp2Stream, call: AppCall, reply: AppReply): void {
    let controller: { abort(reason: Error): void; pause(): void; resume(): void } | undefined;
    let done = false;
    // The client went away (or the stream broke): stop the app's work and drop its connection.
    stream.once('close', () => {
      if (!done) controller?.abort(new Error('the client proxy cancelled the request'));
    });
    try {
      this.dispatcher.dispatch(
        {
          origin: this.origin(call.port),
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
      request = http.request({ host: this.host, port: call.port, method: call.method, path: call.path, headers, agent: this.expectAgent });
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
}
