// Opaque TCP between proxies (CONNECT, explicit outbound listeners, WebSocket upgrades): a TLS
// connection with its own ALPN, `strait-tcp`, so the inbound side tells it from HTTP/2 at the
// handshake. The client proxy then sends one JSON line naming the app port; the server proxy
// connects to the app and answers one JSON line, `{"ok":true}` or `{"error":"…"}`; after that the
// connection carries the application's bytes both ways untouched.
import type { Duplex } from 'node:stream';

export const TUNNEL_ALPN = 'strait-tcp';
/** A header line longer than this is refused: it is a few dozen bytes when honest. */
export const MAX_TUNNEL_LINE = 1024;

export interface TunnelRequest {
  /** The app port on the server's pod. */
  port: number;
  /** The client proxy's cluster, for `src_cluster`. */
  cluster: string;
}

export type TunnelReply = { ok: true } | { error: string };

export function encodeLine(message: TunnelRequest | TunnelReply): string {
  return `${JSON.stringify(message)}\n`;
}

export function parseTunnelRequest(line: string): TunnelRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'the tunnel header is not JSON';
  }
  const { port, cluster } = (value ?? {}) as Partial<TunnelRequest>;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return 'the tunnel header has no valid port';
  return { port, cluster: typeof cluster === 'string' ? cluster : '' };
}

export function parseTunnelReply(line: string): TunnelReply {
  try {
    const value = JSON.parse(line) as Partial<{ ok: boolean; error: string }>;
    if (value.ok === true) return { ok: true };
    return { error: typeof value.error === 'string' ? value.error : 'the peer refused the tunnel' };
  } catch {
    return { error: 'the peer answered the tunnel header with something that is not JSON' };
  }
}

/**
 * Reads one `\n`-terminated line from `socket`, then leaves the socket paused with any bytes after
 * the line put back, so the caller can pipe it. Rejects on a longer line, a close or a time-out.
 */
export function readLine(socket: Duplex, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, line?: string, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(line!);
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(10);
      if (end === -1) {
        if (buffered.length > MAX_TUNNEL_LINE) finish(new Error(`the tunnel header is longer than ${MAX_TUNNEL_LINE} bytes`));
        return;
      }
      finish(undefined, buffered.subarray(0, end).toString('utf8'), buffered.subarray(end + 1));
    };
    const onClose = () => finish(new Error('the connection closed before the tunnel header'));
    const onError = (err: Error) => finish(err);
    const timer = setTimeout(() => finish(new Error(`no tunnel header within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
  });
}

/** How long a spliced connection may linger after its partner closed, to flush what it holds. */
const LINGER_MS = 5000;

/**
 * Pipes two connections into each other. When one closes, the other is ended gracefully (its
 * buffered bytes still go out) and destroyed if it lingers; when one fails, both are destroyed.
 */
export function splice(a: Duplex, b: Duplex): void {
  const destroyBoth = () => {
    a.destroy();
    b.destroy();
  };
  const closeAfter = (closed: Duplex, other: Duplex) =>
    closed.once('close', () => {
      if (other.destroyed) return;
      other.end();
      setTimeout(() => other.destroy(), LINGER_MS).unref();
    });
  a.on('error', destroyBoth);
  b.on('error', destroyBoth);
  closeAfter(a, b);
  closeAfter(b, a);
  a.pipe(b);
  b.pipe(a);
}
