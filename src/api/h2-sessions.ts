// The HTTP/2 connections of the mesh's gRPC clients (a proxy's discovery client, a link's mesh API
// client): pinged so a connection that died silently is found, and never crashing the process when
// a session errors after it was given up.
import type { SecureClientSessionOptions } from 'node:http2';
import { Http2SessionManager } from '@connectrpc/connect-node';

/** Pings find a connection that died silently; the idle time-out never cuts a watched stream. */
export const PING = { pingIntervalMs: 10_000, pingTimeoutMs: 5_000, idleConnectionTimeoutMs: 60_000 };

/**
 * connect-node's manager removes its own 'error' listener from a session it aborts or leaves, yet
 * the session may still fail afterwards (a PING timing out while the process was stalled), and an
 * 'error' with no listener ends the process. Every session it opens gets a listener that ignores
 * the error: the manager and the stream already report it to the caller.
 */
class GuardedSessionManager extends Http2SessionManager {
  private readonly guarded = new WeakSet<object>();

  override async request(...args: Parameters<Http2SessionManager['request']>): ReturnType<Http2SessionManager['request']> {
    const stream = await super.request(...args);
    const session = stream.session;
    if (session && !this.guarded.has(session)) {
      this.guarded.add(session);
      session.on('error', () => {});
    }
    return stream;
  }
}

export function h2SessionManager(baseUrl: string, tls: SecureClientSessionOptions, ping: typeof PING = PING): Http2SessionManager {
  return new GuardedSessionManager(baseUrl, ping, tls);
}
