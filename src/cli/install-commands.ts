// `strait install` and `strait uninstall`: Strait on a Kubernetes cluster, as `linkerd install`
// and `linkerd uninstall` (with --print, the YAML for `kubectl apply -f -`).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { isDns1123Label } from '../api/names.js';
import * as L from '../control/kube-layout.js';
import { DEFAULT_TRUST_DOMAIN, trustDomainProblem } from '../identity/spiffe.js';
import { UsageError } from './context.js';
import { installManifests, installShape, type GatewayServiceType } from './install-manifests.js';
import { bringsPki, createIssuerPem, createServingPem, loadIssuerPem, type PkiFlags } from './install-pki.js';
import { kubeConnection, withKubeOptions } from './kube-context.js';
import { install, installAccess, installedPki, objectRef, requireAccess, uninstall } from './kube-install.js';
import { colour } from './output.js';

interface InstallFlags extends PkiFlags {
  clusterName?: string;
  trustDomain: string;
  gatewayServiceType: string;
  print?: boolean;
}

const GATEWAY_TYPES: GatewayServiceType[] = ['LoadBalancer', 'NodePort'];

function checkFlags(flags: InstallFlags): GatewayServiceType {
  const type = GATEWAY_TYPES.find((t) => t === flags.gatewayServiceType);
  if (!type) throw new UsageError(`--gateway-service-type ${flags.gatewayServiceType}: use LoadBalancer or NodePort`);
  if (flags.clusterName !== undefined && !isDns1123Label(flags.clusterName)) {
    throw new UsageError(`--cluster-name "${flags.clusterName}" is not a valid cluster name (a DNS-1123 label: lower-case letters, digits and '-')`);
  }
  const problem = trustDomainProblem(flags.trustDomain);
  if (problem) throw new UsageError(`--trust-domain "${flags.trustDomain}": ${problem}`);
  return type;
}

/** The cluster name: --cluster-name, else the context's name when it is a valid one. */
function clusterName(flags: InstallFlags, context: string | undefined): string {
  if (flags.clusterName !== undefined) return flags.clusterName;
  if (context !== undefined && isDns1123Label(context)) return context;
  throw new UsageError(`name the cluster with --cluster-name (the context${context ? ` "${context}"` : ''} is not a valid cluster name)`);
}

async function runInstall(flags: InstallFlags, cmd: Command): Promise<void> {
  const gatewayServiceType = checkFlags(flags);
  const userPki = bringsPki(flags) ? await loadIssuerPem(flags) : undefined;
  if (flags.print) {
    const { context } = cmd.optsWithGlobals<{ context?: string }>();
    const name = clusterName(flags, context);
    const objects = installManifests({
      clusterName: name,
      trustDomain: flags.trustDomain,
      gatewayServiceType,
      issuer: userPki ?? (await createIssuerPem(flags.trustDomain, name)),
      webhookTls: await createServingPem(L.CONTROL_PLANE, L.STRAIT_NAMESPACE),
    });
    process.stdout.write(objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    return;
  }
  const conn = await kubeConnection(cmd);
  const name = clusterName(flags, conn.context);
  // Before anything is read or written: an account that lacks a permission learns all it lacks.
  await requireAccess(conn, installAccess(installShape()), 'install Strait');
  const existing = await installedPki(conn.api);
  const objects = installManifests({
    clusterName: name,
    trustDomain: flags.trustDomain,
    gatewayServiceType,
    issuer: userPki ?? existing.issuer ?? (await createIssuerPem(flags.trustDomain, name)),
    webhookTls: existing.webhookTls ?? (await createServingPem(L.CONTROL_PLANE, L.STRAIT_NAMESPACE)),
  });
  console.log(`Installing Strait ${name} into context ${conn.context} (${conn.api.server}, Kubernetes ${conn.version}):`);
  const results = await install(conn, objects, (a) => {
    const mark = a.outcome === 'unchanged' || a.outcome === 'reused' ? colour.dim('·') : colour.ok('✓');
    console.log(`${mark} ${objectRef(a.object)} ${a.outcome}${a.note ? ` (${a.note})` : ''}`);
  });
  const changed = results.filter((r) => r.outcome === 'created' || r.outcome === 'configured').length;
  console.log(changed === 0 ? 'Strait was already installed as asked: nothing changed.' : `Strait is installed (${changed} object${changed === 1 ? '' : 's'} written).`);
  console.log(`Check it with: strait check --context ${conn.context}`);
}

async function runUninstall(cmd: Command): Promise<void> {
  const conn = await kubeConnection(cmd);
  const removed = await uninstall(conn, (o) => console.log(`${colour.ok('✓')} ${objectRef(o)}${o.metadata.namespace ? ` -n ${o.metadata.namespace}` : ''} deleted`));
  console.log(removed.length === 0 ? `Strait is not installed in context ${conn.context}: nothing to remove.` : `Strait is uninstalled from context ${conn.context}.`);
}

export function registerInstallCommands(program: Command): void {
  withKubeOptions(program.command('install'))
    .description('install Strait into a Kubernetes cluster (--context): CRDs, RBAC, control plane, gateway, proxy injector; or --print the YAML for kubectl apply -f -')
    .option('--cluster-name <name>', "the cluster's name in the mesh (default: the context's name)")
    .option('--trust-domain <domain>', 'the SPIFFE trust domain', DEFAULT_TRUST_DOMAIN)
    .option('--trust-anchor <file>', 'the trust anchor (root CA) PEM the issuer chains to (with --issuer-cert and --issuer-key)')
    .option('--issuer-cert <file>', "the cluster's issuer certificate PEM")
    .option('--issuer-key <file>', "the cluster's issuer private key PEM")
    .option('--cacerts <dir>', "an Istio cacerts directory (root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem) instead of step's files")
    .option('--gateway-service-type <type>', "the gateway Service's type: LoadBalancer or NodePort", 'LoadBalancer')
    .option('--print', 'write the manifests as YAML to stdout instead of applying them (strait install --print | kubectl apply -f -)')
    .action((flags: InstallFlags, cmd: Command) => runInstall(flags, cmd));
  withKubeOptions(program.command('uninstall'))
    .description('remove from a Kubernetes cluster (--context) everything strait install created, and nothing else')
    .action((_flags: unknown, cmd: Command) => runUninstall(cmd));
}
