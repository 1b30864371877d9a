// What every outbound stage shares: the HTTP call on its way through them, and the answers the
// proxy makes itself (to the call, or straight to a socket for CONNECT, upgrades and requests the
// parser refused), each with the status and the reason.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpSeries } from '../metrics.js';
import { proxyAnswer } from '../transport/headers.js';

/** Requests with headers larger than this get 431. */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface HttpCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** As the client wrote it; it becomes the app's Host. */
  authority: string;
  path: string;
  expectContinue: boolean;
  hasBody: boolean;
}

/** A request the proxy answers itself, with the status and the reason. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 503: 'Service Unavailable', 508: 'Loop Detected' };

/** Answers the call itself; a response already under way is cut off instead. */
export function refuse(res: ServerResponse, series: HttpSeries | undefined, refusal: Refusal): void {
  if (series) {
    series.requests++;
    series.response(refusal.status, refusal.status >= 500);
  }
  if (res.headersSent) return void res.destroy();
  const { body, headers } = proxyAnswer(refusal.message);
  res.writeHead(refusal.status, headers);
  res.end(body);
}

/** An answer written straight to a socket the HTTP server let go of. */
export function rawAnswer(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { body, headers } = proxyAnswer(message);
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nconnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${body}`);
}

/** Answers a request the HTTP parser could not accept: 431 for huge headers, 408 for slow ones, else 400. */
export function answerClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET') return void socket.destroy();
  if (err.code === 'HPE_HEADER_OVERFLOW') return rawAnswer(socket, 431, `the request headers are larger than ${MAX_HEADER_BYTES} bytes`);
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return rawAnswer(socket, 408, 'the request headers did not arrive in time');
  rawAnswer(socket, 400, `malformed request: ${err.reason ?? err.message}`);
}
