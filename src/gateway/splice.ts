// Two TCP connections joined byte for byte, the way the gateway carries a TLS session it must not
// read. Back-pressure comes from pipe(): a slow reader on one side stops reads on the other. Each
// direction ends on its own (half-close): a client that is done sending still gets the rest of the
// answer. A failure on either side, or no traffic for the idle time, destroys both.
import type net from 'node:net';

export interface SpliceOptions {
  /** Both connections are destroyed after this long with no byte either way. */
  idleTimeoutMs: number;
  onIdle(): void;
  /** Called once, when both connections are closed. */
  onDone(): void;
}

/**
 * A connection closed cleanly when both its directions ended normally; the other one then has
 * its end already called and closes by itself once its last bytes are out.
 */
function closedCleanly(socket: net.Socket): boolean {
  return socket.readableEnded && socket.writableFinished && !socket.errored;
}

/** Joins two connected sockets, both made with `allowHalfOpen: true` so that each direction ends on its own. */
export function splice(client: net.Socket, upstream: net.Socket, options: SpliceOptions): void {
  const destroyBoth = () => {
    client.destroy();
    upstream.destroy();
  };
  let open = 2;
  const closed = (socket: net.Socket, other: net.Socket) => () => {
    if (!closedCleanly(socket)) other.destroy();
    if (--open === 0) options.onDone();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.once('close', closed(client, upstream));
  upstream.once('close', closed(upstream, client));
  // Every byte either way passes through the client's socket, so its timer sees all traffic.
  client.setTimeout(options.idleTimeoutMs, () => {
    options.onIdle();
    destroyBoth();
  });
  client.pipe(upstream);
  upstream.pipe(client);
}
