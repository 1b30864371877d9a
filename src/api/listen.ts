// Starting a listener as a promise: every server of the mesh (proxy ports, the gateway, the control
// plane's APIs, its admin socket) binds through this one function.
import type { ListenOptions, Server } from 'node:net';

/** Binds `server` (a TCP `{ port, host }` or a Unix socket `{ path }`); rejects if binding fails. */
export function listen(server: Server, where: ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
