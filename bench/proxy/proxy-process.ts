// One Strait proxy as its own process, for the benchmark: the real runProxy with a certificate and
// a destination table handed over in a JSON file (argv[2]) instead of a control plane, so the data
// plane is measured alone. Prints one line, `ready {ports}`, once it listens.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { TlsMaterial } from '../../src/identity/tls.js';
import type { ProxyConfig } from '../../src/proxy/config.js';
import { runProxy } from '../../src/proxy/main.js';
import { StaticResolver, type StaticDestination } from '../../src/proxy/static-resolver.js';
import { staticIdentity } from '../../test/unit/identity/fixtures.js';

export interface BenchProxySpec {
  config: ProxyConfig;
  material: TlsMaterial;
  destinations: Record<string, StaticDestination>;
}

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as BenchProxySpec;
const proxy = await runProxy(spec.config, {
  identity: staticIdentity(spec.material),
  resolver: new StaticResolver(spec.destinations),
  log: pino({ level: 'warn' }),
});
process.stdout.write(`ready ${JSON.stringify(proxy.ports)}\n`);
process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
