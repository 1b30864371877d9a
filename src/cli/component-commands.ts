// Entry points of Strait's components, run by the platform rather than by people: a cluster's
// control plane (started by `strait up`) and a pod's proxy (the injected container).
import type { Command } from 'commander';
import { straitHome } from '../runtime/home.js';
import { globals, UsageError } from './context.js';

export function registerComponentCommands(program: Command): void {
  program
    .command('control-plane')
    .description("run one cluster's control plane in the foreground (started by `strait up`)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { cluster } = globals(cmd);
      if (!cluster) throw new UsageError('name the cluster: strait control-plane --cluster NAME');
      const { runControlPlane } = await import('../runtime/cluster.js');
      await runControlPlane(straitHome(), cluster);
      // The process stays up, serving, until `strait down` or a signal.
      await new Promise(() => {});
    });

  program
    .command('proxy')
    .description("run a pod's proxy in the foreground, configured by its environment (the injected container)")
    .action(async () => {
      const { proxyConfigFromEnv } = await import('../proxy/config.js');
      const { runProxy } = await import('../proxy/main.js');
      const proxy = await runProxy(proxyConfigFromEnv());
      const stop = () => void proxy.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      await new Promise(() => {});
    });
}
