// The gateway under test, in its own process (pinned to its own core by the driver), routing the
// benchmark's route keys to the sink's ports.
import { pino } from 'pino';
import { startGateway, type Gateway } from '../../src/gateway/router.js';
import { StaticRouteTable, type Route } from '../../src/gateway/routes.js';
import type { TlsMaterial } from '../../src/identity/tls.js';
import { staticIdentity } from '../../test/unit/identity/fixtures.js';
import { serve } from './ipc.js';

let gateway: Gateway | undefined;

serve(async (message) => {
  switch (message.op) {
    case 'start': {
      const routes = new StaticRouteTable(message.routes as [string, Route][]);
      gateway = await startGateway({
        cluster: 'bench',
        identity: staticIdentity(message.material as TlsMaterial),
        routes,
        host: '127.0.0.1',
        port: 0,
        log: pino({ level: 'warn' }),
      });
      return { port: gateway.address.port };
    }
    case 'stats':
      return { stats: gateway!.stats() };
    case 'stop':
      await gateway?.close();
      // Let a --cpu-prof profile be written on the way out.
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown op ${String(message.op)}`);
  }
});
