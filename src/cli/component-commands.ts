// Entry points of Strait's components, run by the platform rather than by people: a cluster's
// control plane (started by `strait up`) and a pod's proxy (the injected container).
import type { Command } from 'commander';
import { straitHome } from '../runtime/home.js';
import { globals, UsageError } from './context.js';

export function registerComponentCommands(program: Command): void {
  program
    .command('control-plane')
    .description("run one cluster's control plane in the foreground (started by `strait up`, or by a Deployment on Kubernetes)")
    .option('--platform <platform>', 'local (a cluster of `strait up`) or kubernetes', 'local')
    .option('--kubeconfig <file>', 'kubernetes: the kubeconfig (default KUBECONFIG or ~/.kube/config, as kubectl)')
    .option('--context <name>', 'kubernetes: the kubeconfig context to use')
    .option('--cluster-name <name>', "kubernetes: this cluster's name in the mesh")
    .option('--trust-domain <domain>', 'kubernetes: the SPIFFE trust domain', 'cluster.local')
    .option('--trust-anchor <file>', 'kubernetes: the trust anchor (PEM)')
    .option('--issuer-cert <file>', "kubernetes: this cluster's issuer certificate (PEM)")
    .option('--issuer-key <file>', "kubernetes: the issuer's private key (PEM)")
    .option('--listen <host>', 'kubernetes: where the Connect port and the mesh API listen', '0.0.0.0')
    .option('--gateway-listen <host:port>', 'kubernetes: where the gateway listens', '0.0.0.0:4143')
    .option('--gateway-address <host:port>', 'kubernetes: the gateway as other clusters reach it (its Service)')
    .option('--region <region>', "kubernetes: the cluster's region, for failover by region")
    .option('--webhook-port <port>', 'kubernetes: serve the proxy injector webhook on this port')
    .option('--webhook-cert <file>', "kubernetes: the webhook's serving certificate (PEM)")
    .option('--webhook-key <file>', "kubernetes: the webhook's private key (PEM)")
    .action(async (opts: KubeControlPlaneFlags, cmd: Command) => {
      if (opts.platform === 'kubernetes') {
        await runOnKubernetes(opts);
      } else if (opts.platform === 'local') {
        const { cluster } = globals(cmd);
        if (!cluster) throw new UsageError('name the cluster: strait control-plane --cluster NAME');
        const { runControlPlane } = await import('../runtime/cluster.js');
        await runControlPlane(straitHome(), cluster);
      } else {
        throw new UsageError(`--platform must be local or kubernetes, not ${JSON.stringify(opts.platform)}`);
      }
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

interface KubeControlPlaneFlags {
  platform: string;
  kubeconfig?: string;
  context?: string;
  clusterName?: string;
  trustDomain: string;
  trustAnchor?: string;
  issuerCert?: string;
  issuerKey?: string;
  listen: string;
  gatewayListen: string;
  gatewayAddress?: string;
  region?: string;
  webhookPort?: string;
  webhookCert?: string;
  webhookKey?: string;
}

async function runOnKubernetes(opts: KubeControlPlaneFlags): Promise<void> {
  const { clusterName, trustAnchor, issuerCert, issuerKey, gatewayAddress } = opts;
  if (!clusterName || !trustAnchor || !issuerCert || !issuerKey || !gatewayAddress) {
    throw new UsageError('on Kubernetes the control plane needs --cluster-name, --trust-anchor, --issuer-cert, --issuer-key and --gateway-address');
  }
  const { parseHostPort } = await import('../api/kinds/strait.js');
  const gatewayListen = parseHostPort(opts.gatewayListen);
  if (!gatewayListen) throw new UsageError(`--gateway-listen must be host:port, not ${JSON.stringify(opts.gatewayListen)}`);
  const { pino } = await import('pino');
  const { KubeRest } = await import('../store/kube-rest.js');
  const { KubeApi } = await import('../control/kube-api.js');
  const { kubeCredentialVerifier } = await import('../control/token-review.js');
  const { startKubeControlPlane } = await import('../runtime/kube-control-plane.js');
  const log = pino({ base: { cluster: clusterName } });
  // In a pod without --kubeconfig: the ServiceAccount's credentials, which a node agent's pod has
  // under its working directory.
  const inClusterRoot = !opts.kubeconfig && process.env.KUBERNETES_SERVICE_HOST ? process.cwd() : undefined;
  const connection = { kubeconfig: opts.kubeconfig, inClusterRoot, context: opts.context };
  const api = new KubeApi(await KubeRest.connect(connection));
  const controlPlane = await startKubeControlPlane({
    ...connection,
    verifier: kubeCredentialVerifier(api, clusterName),
    cluster: clusterName,
    trustDomain: opts.trustDomain,
    region: opts.region,
    issuer: { trustAnchor, issuerCert, issuerKey },
    host: opts.listen,
    gatewayListen,
    gatewayAddress,
    log,
  });
  if (opts.webhookPort) {
    if (!opts.webhookCert || !opts.webhookKey) throw new UsageError('--webhook-port needs --webhook-cert and --webhook-key');
    const { startKubeInjector } = await import('../control/kube-injector.js');
    await startKubeInjector(api, {
      cluster: clusterName,
      trustDomain: opts.trustDomain,
      trustAnchorsFile: trustAnchor,
      certFile: opts.webhookCert,
      keyFile: opts.webhookKey,
      port: Number(opts.webhookPort),
      host: opts.listen,
      onEvent: (event) => log.info(event, 'proxy injector'),
    });
  }
  // A signal stops the control plane; the proxies keep serving with what they know (static stability).
  const stop = () => void controlPlane.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
