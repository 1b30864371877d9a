// `strait up`, `strait down` and the control-plane entry point.
import type { Command } from 'commander';
import { straitHome } from '../runtime/home.js';
import { colour, spinner, table } from './output.js';
import { UsageError } from './context.js';

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
    .action(async (opts: { clusters?: string; trustDomain?: string; trustAnchor?: string; issuerCert?: string[]; issuerKey?: string[]; cacerts?: string[] }) => {
      const names = (opts.clusters ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (opts.clusters !== undefined && names.length === 0) throw new UsageError('--clusters needs at least one name, e.g. --clusters cluster1,cluster2');
      const home = straitHome();
      const progress = await spinner('starting clusters');
      try {
        const pki = opts.trustAnchor || opts.issuerCert || opts.issuerKey || opts.cacerts ? opts : undefined;
        const { up } = await import('../runtime/up.js');
        const states = await up(home, names, { trustDomain: opts.trustDomain, pki, progress: (msg) => (progress.text = msg) });
        progress.stop();
        if (states.length === 0) throw new UsageError('no clusters to start; name some with --clusters cluster1,cluster2');
        console.log(table(['CLUSTER', 'STATE', 'PID'], states.map((s) => [s.name, s.state === 'started' ? colour.ok('started') : 'running', s.pid])));
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
