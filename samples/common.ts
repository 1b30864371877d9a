// What every sample app shares: who the pod is, where to listen, settings from the environment,
// one access-log line per request, and a clean shutdown on SIGTERM. Only `node:` modules, so a
// sample starts as fast as node itself and stays small.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';

/** The pod serving the request: POD_NAME as the runtime sets it, else HOSTNAME as in a container. */
export function podName(): string {
  return process.env.POD_NAME || process.env.HOSTNAME || hostname();
}

/** Print why the sample cannot start and exit 1 (the runtime shows this in the pod's logs). */
export function exitWithError(sample: string, message: string): never {
  process.stderr.write(`${sample}: ${message}\n`);
  process.exit(1);
}

/** A TCP port from env `name`, or `fallback` when unset. */
export function envPort(sample: string, name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    exitWithError(sample, `env ${name} must be a port number from 1 to 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/** A share of requests from env `name` (0..1), or `fallback` when unset. */
export function envRate(sample: string, name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const rate = Number(raw);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
    exitWithError(sample, `env ${name} must be a number from 0 to 1, got ${JSON.stringify(raw)}`);
  }
  return rate;
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Send a body that is already JSON text (some samples must match another app's exact spelling). */
export function sendJsonText(res: ServerResponse, status: number, json: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

export class BodyTooLargeError extends Error {}

/** The request body, refusing more than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new BodyTooLargeError(`request body larger than ${limit} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Resolve after `ms`, or early (false) when the client goes away, so a dropped call stops waiting. */
export function waitUnlessClosed(res: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(true);
    }, ms);
    res.once('close', onClose);
  });
}

class BadRequestTargetError extends Error {}

/** The request target as a URL: origin-form (`/hello`) as usual, absolute-form as a proxy may send it. */
function requestUrl(target = '/'): URL {
  try {
    return target.startsWith('/') ? new URL(`http://sample${target}`) : new URL(target);
  } catch {
    throw new BadRequestTargetError(`bad request target ${JSON.stringify(target)}`);
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface HttpSampleOptions {
  /** The sample's name, used in log and error lines. */
  sample: string;
  port: number;
  handle: Handler;
  /** Extra words for the start-up line, e.g. the version served. */
  describe?: string;
}

/** In-flight requests get this long to finish after SIGTERM, as podinfo's shutdown timeout does. */
const SHUTDOWN_GRACE_MS = 5000;

/**
 * Serve `handle` on POD_IP (default 127.0.0.1) and `port`. Prints one start-up line, then one
 * access-log line per request. On SIGTERM or SIGINT it stops accepting, lets in-flight requests
 * finish (up to SHUTDOWN_GRACE_MS), and exits 0.
 */
export function runHttpSample(options: HttpSampleOptions): void {
  const { sample, port, handle } = options;
  const host = process.env.POD_IP || '127.0.0.1';
  const pod = podName();

  let stopping = false;
  // Responses not yet sent; when stopping they say `Connection: close`, so keep-alive clients let go.
  const unanswered = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const client = req.socket.remoteAddress ?? '-';
    if (stopping) res.setHeader('connection', 'close');
    unanswered.add(res);
    res.on('close', () => {
      unanswered.delete(res);
      // A request whose client went away before the answer is logged too, as "aborted".
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = `${new Date().toISOString()} ${client} "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${ms.toFixed(1)}ms\n`;
      process.stdout.write(line);
    });
    Promise.resolve()
      .then(() => handle(req, res, requestUrl(req.url)))
      .catch((error: unknown) => {
        if (res.headersSent) return res.destroy();
        if (error instanceof BadRequestTargetError) return sendText(res, 400, `${error.message}\n`);
        if (error instanceof BodyTooLargeError) return sendText(res, 413, `${error.message}\n`);
        process.stderr.write(`${sample}: ${req.method} ${req.url} failed: ${String(error)}\n`);
        sendText(res, 500, `internal error in ${pod}\n`);
      });
  });

  server.on('error', (error: NodeJS.ErrnoException) => {
    exitWithError(sample, `cannot listen on ${host}:${port}: ${error.code ?? error.message}`);
  });
  server.listen(port, host, () => {
    const what = options.describe ? ` ${options.describe}` : '';
    process.stdout.write(`${sample}${what} listening on ${host}:${port} as ${pod}\n`);
  });

  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
