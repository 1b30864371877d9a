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
    .command('node')
    .description('run a Kubernetes node whose pods are processes on this machine: a stand-in for the kubelet and a container runtime')
    .requiredOption('--kubeconfig <file>', "the node's kubeconfig (its client certificate is system:node:NAME)")
    .option('--context <name>', 'the kubeconfig context to use')
    .requiredOption('--node-name <name>', 'the Node to register')
    .requiredOption('--pod-cidr <cidr>', 'the loopback block pods get addresses from, 127.X.0.0/16')
    .requiredOption('--dir <dir>', "where pods' directories and logs live")
    .action(async (opts: { kubeconfig: string; context?: string; nodeName: string; podCidr: string; dir: string }) => {
      const { pino } = await import('pino');
      const { startNodeAgent } = await import('../runtime/node/agent.js');
      const log = pino({ base: { node: opts.nodeName } });
      const agent = await startNodeAgent({ ...opts, log: { info: (m) => log.info(m), warn: (m) => log.warn(m), error: (m) => log.error(m) } });
      const stop = () => {
        agent.stop();
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
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
