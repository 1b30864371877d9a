// `strait up`, `strait down` and the control-plane entry point.
import type { Command } from 'commander';
import { readMesh, straitHome } from '../runtime/home.js';
import { colour, spinner, table } from './output.js';
import { UsageError } from './context.js';

interface UpFlags {
  clusters?: string;
  trustDomain?: string;
  trustAnchor?: string;
  issuerCert?: string[];
  issuerKey?: string[];
  cacerts?: string[];
  gatewayAddress?: string[];
  region?: string[];
  sameness?: boolean;
}

export function registerClusterCommands(program: Command): void {
  program
    .command('up')
    .description('start the control plane of each cluster (and of every cluster already in the state directory)')
    .option('--clusters <names>', 'comma-separated cluster names to create or start, e.g. cluster1,cluster2')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of a new mesh (default: cluster.local)')
    .option('--trust-anchor <file>', 'PEM trust anchor(s) your issuers chain to (e.g. step\'s root-ca output); several anchors may be bundled')
    .option('--issuer-cert <[cluster=]file...>', 'issuer (intermediate CA) certificate, per cluster as cluster=file or one for all')
    .option('--issuer-key <[cluster=]file...>', 'the issuer\'s private key (ECDSA P-256), per cluster or one for all')
    .option('--cacerts <[cluster=]dir...>', 'an Istio cacerts directory (root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem)')
    .option(
      '--gateway-address <[cluster=]host:port...>',
      "where other clusters reach a cluster's gateway (behind NAT or a floating IP: the public address), per cluster as cluster=host:port; cluster= alone goes back to the default; kept in the state directory",
    )
    .option('--region <[cluster=]region...>', 'the region a cluster runs in, per cluster or one for all; cluster= alone removes it')
    .option('--sameness', 'namespace sameness: Services of the same name and namespace in linked clusters are one service')
    .option('--no-sameness', 'turn namespace sameness off')
    .action(async (opts: UpFlags) => {
      const names = (opts.clusters ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (opts.clusters !== undefined && names.length === 0) throw new UsageError('--clusters needs at least one name, e.g. --clusters cluster1,cluster2');
      const home = straitHome();
      const progress = await spinner('starting clusters');
      try {
        const pki = opts.trustAnchor || opts.issuerCert || opts.issuerKey || opts.cacerts ? opts : undefined;
        const { up } = await import('../runtime/up.js');
        const settings = { gatewayAddress: opts.gatewayAddress, region: opts.region, sameness: opts.sameness };
        const states = await up(home, names, { trustDomain: opts.trustDomain, pki, settings, progress: (msg) => (progress.text = msg) });
        progress.stop();
        if (states.length === 0) throw new UsageError('no clusters to start; name some with --clusters cluster1,cluster2');
        const regions = states.some((s) => s.region !== undefined);
        console.log(
          table(
            ['CLUSTER', 'STATE', 'PID', 'GATEWAY', ...(regions ? ['REGION'] : [])],
            states.map((s) => [
              s.name,
              s.state === 'started' ? colour.ok('started') : 'running',
              s.pid,
              s.gatewayListen === s.gatewayAddress ? s.gatewayAddress : `${s.gatewayAddress} (listening on ${s.gatewayListen})`,
              ...(regions ? [s.region ?? '-'] : []),
            ]),
          ),
        );
        for (const s of states) if (s.pending) console.error(colour.warn(`warning: ${s.pending}`));
        if (readMesh(home).sameness) console.log('namespace sameness: on');
        console.log(colour.dim(`state directory: ${home}`));
      } catch (err) {
        progress.stop();
        throw err;
      }
    });

  program
    .command('down')
    .description('stop every cluster and its pods; the state stays for the next `strait up`')
    .action(async () => {
      const progress = await spinner('stopping clusters');
      try {
        const { down } = await import('../runtime/up.js');
        const stopped = await down(straitHome(), (msg) => (progress.text = msg));
        progress.stop();
        console.log(stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing was running');
      } catch (err) {
        progress.stop();
        throw err;
      }
    });
}
