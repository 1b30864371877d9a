// The proxy's admin port: `/live` (the process answers), `/ready` (it has a certificate and its
// listeners are up), `/metrics` (Prometheus), `/config` (what the proxy currently believes, JSON).
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ProxyMetrics } from './metrics.js';
import { listen } from '../api/listen.js';

export interface AdminOptions {
  host: string;
  port: number;
  metrics: ProxyMetrics;
  log: Logger;
  /** Undefined when ready, else why not. */
  notReadyReason(): string | undefined;
  config(): unknown;
}

export async function startAdmin(options: AdminOptions): Promise<{ server: Server; port: number }> {
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET is served here\n');
    switch (path) {
      case '/live':
        return send(200, 'live\n');
      case '/ready': {
        const reason = options.notReadyReason();
        return reason === undefined ? send(200, 'ready\n') : send(503, `not ready: ${reason}\n`);
      }
      case '/metrics':
        options.metrics.text().then(
          (text) => send(200, text, options.metrics.contentType),
          (err: Error) => send(500, `cannot collect metrics: ${err.message}\n`),
        );
        return;
      case '/config':
        return send(200, `${JSON.stringify(options.config(), null, 2)}\n`, 'application/json');
      default:
        return send(404, 'not found: the admin port serves /live, /ready, /metrics and /config\n');
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await listen(server, { port: options.port, host: options.host });
  return { server, port: (server.address() as AddressInfo).port };
}
