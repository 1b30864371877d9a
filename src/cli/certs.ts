// `strait certs create` and `strait certs inspect`: the mesh PKI without `step` or `openssl`.
import type { Command } from 'commander';
import { isDns1123Label } from '../api/names.js';
import { formatLifetime, parseLifetime } from '../identity/duration.js';
import { DEFAULT_TRUST_DOMAIN, trustDomainProblem } from '../identity/spiffe.js';
import { UsageError } from './context.js';
import { toJson } from '../api/codec.js';

interface CreateOptions {
  trustDomain: string;
  clusters?: string;
  out?: string;
  sharedIssuer?: boolean;
  rootLifetime?: string;
  issuerLifetime?: string;
}

function lifetime(text: string, flag: string): number {
  try {
    return parseLifetime(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

async function create(options: CreateOptions): Promise<void> {
  const problem = trustDomainProblem(options.trustDomain);
  if (problem) throw new UsageError(`--trust-domain "${options.trustDomain}": ${problem}`);
  if (options.out === undefined) throw new UsageError('--out DIR is required: the directory to write the certificates and keys to');
  const clusters = (options.clusters ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '');
  if (clusters.length === 0 && !options.sharedIssuer) {
    throw new UsageError('--clusters c1,c2,… is required (one issuer per cluster), unless --shared-issuer makes one issuer for all');
  }
  const bad = clusters.find((c) => !isDns1123Label(c));
  if (bad !== undefined) throw new UsageError(`--clusters: "${bad}" is not a valid cluster name (a DNS-1123 label: lower-case letters, digits and '-')`);
  const duplicate = clusters.find((c, i) => clusters.indexOf(c) !== i);
  if (duplicate !== undefined) throw new UsageError(`--clusters: "${duplicate}" is named twice`);
  // The PKI code is loaded only by the commands that use it: it is the slowest to load.
  const { DEFAULT_ISSUER_LIFETIME_MS, DEFAULT_ROOT_LIFETIME_MS } = await import('../identity/pki.js');
  const { createMeshPkiFiles } = await import('../identity/files.js');
  const rootLifetimeMs = options.rootLifetime === undefined ? DEFAULT_ROOT_LIFETIME_MS : lifetime(options.rootLifetime, '--root-lifetime');
  const issuerLifetimeMs = options.issuerLifetime === undefined ? DEFAULT_ISSUER_LIFETIME_MS : lifetime(options.issuerLifetime, '--issuer-lifetime');
  if (issuerLifetimeMs > rootLifetimeMs) {
    throw new UsageError(`--issuer-lifetime ${options.issuerLifetime} is longer than --root-lifetime ${options.rootLifetime}; an issuer cannot outlive its trust anchor`);
  }
  const written = await createMeshPkiFiles(options.out, { trustDomain: options.trustDomain, clusters, sharedIssuer: options.sharedIssuer ?? false, rootLifetimeMs, issuerLifetimeMs });
  const issuers = options.sharedIssuer ? 'one shared issuer' : `an issuer for each of ${clusters.join(', ')}`;
  console.log(`Created a trust anchor (${formatLifetime(rootLifetimeMs)}) and ${issuers} (${formatLifetime(issuerLifetimeMs)}) for trust domain ${options.trustDomain}:`);
  for (const file of written) console.log(`  ${file}${file.endsWith('.key') ? '   (private key, mode 0600)' : ''}`);
  console.log('Keep trust-anchor.key offline; a cluster needs only trust-anchor.crt and its own issuer certificate and key.');
}

async function inspect(file: string, options: { output?: string }): Promise<void> {
  if (options.output !== undefined && options.output !== 'json') throw new UsageError(`-o ${options.output}: only json is supported`);
  const { formatInspectReport, inspectPem } = await import('../identity/inspect.js');
  const { readText } = await import('../identity/pem.js');
  const report = await inspectPem(readText(file), file);
  console.log(options.output === 'json' ? toJson(report) : formatInspectReport(report));
}

export function registerCertsCommands(program: Command): void {
  const certs = program.command('certs').description('create and inspect the mesh PKI: a trust anchor and an issuer per cluster');
  certs
    .command('create')
    .description('write a trust anchor (root CA) and issuers (intermediate CAs), ECDSA P-256, as PEM files')
    .option('--trust-domain <domain>', 'the SPIFFE trust domain shared by all clusters', DEFAULT_TRUST_DOMAIN)
    .option('--clusters <names>', 'comma-separated cluster names, one issuer each (issuer-<cluster>.crt/.key)')
    .option('--out <dir>', 'directory to write the files to (created if missing; existing files are never overwritten)')
    .option('--shared-issuer', 'write one issuer (issuer.crt/.key) for all clusters, as the Linkerd guides do')
    .option('--root-lifetime <duration>', 'trust anchor lifetime, e.g. 87600h or 10y (default: 10y)')
    .option('--issuer-lifetime <duration>', 'issuer lifetime, e.g. 8760h or 365d (default: 1y)')
    .action((options: CreateOptions) => create(options));
  certs
    .command('inspect')
    .description('show the certificates in a PEM file (subject, SANs, validity, key, fingerprint, chain) or a private key type')
    .argument('<file>', 'a PEM certificate, chain, bundle or private key')
    .option('-o, --output <format>', 'json')
    .action((file: string, options: { output?: string }) => inspect(file, options));
}
