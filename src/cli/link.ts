// `strait link`, `strait unlink` and `strait connect`: linking clusters so that one can use the
// services another exports. `link --from cluster1 --to cluster2` does what `linkerd multicluster
// link --context=cluster1 | kubectl --context=cluster2 apply -f -` does: cluster1 mints a credential
// for cluster2 to read its mesh API, and cluster2 gets the credential (a Secret) and a Link whose
// controller mirrors cluster1's exports. All or nothing: everything is checked before anything is
// written, and if cluster2 refuses its part, cluster1's credential is revoked again.
import type { Command } from 'commander';
import { toYaml } from '../api/codec.js';
import type { Secret } from '../api/kinds/secret.js';
import { MULTICLUSTER_NAMESPACE, type LinkSpec } from '../api/kinds/strait.js';
import { parseSelector, SelectorSyntaxError } from '../api/labels.js';
import { parseDuration } from '../api/quantity.js';
import type { LabelSelector, Resource } from '../api/types.js';
import type { ClusterInfo, IssuedCredential } from '../control/admin.js';
import { AdminClient } from '../control/admin-client.js';
import { mirrorSelectors } from '../control/links/writer.js';
import { paths, pickCluster, straitHome } from '../runtime/home.js';
import { CliError, UsageError } from './context.js';
import { colour } from './output.js';

/** The Secret in the consuming cluster that holds the credential for `target`, as Linkerd names it. */
export function credentialsSecretName(target: string): string {
  return `cluster-credentials-${target}`;
}

/** Stands in for the token in `--print` output: nothing is minted without applying. */
export const PRINT_PLACEHOLDER = 'minted by `strait link` when applied without --print';

/** One side of a link: a running cluster and what it says about itself. */
interface Side {
  name: string;
  client: AdminClient;
  info: ClusterInfo;
}

/** Why `from` cannot be linked to `to` (in that direction or the other), or nothing. */
export function linkProblems(from: ClusterInfo, to: ClusterInfo): string[] {
  if (from.cluster === to.cluster) {
    return from.clusterId === to.clusterId
      ? [`${from.cluster} is one cluster: a cluster cannot be linked to itself`]
      : [`two different clusters are both named ${from.cluster} (ids ${from.clusterId} and ${to.clusterId}); rename one: a Link is named after its target cluster, so they cannot be told apart`];
  }
  const problems: string[] = [];
  if (from.trustDomain !== to.trustDomain) {
    problems.push(`${from.cluster} has trust domain ${from.trustDomain} and ${to.cluster} has ${to.trustDomain}: neither could verify the other's workloads`);
  }
  if (sharedAnchor(from, to) === undefined) {
    problems.push(
      `${from.cluster} and ${to.cluster} share no trust anchor (${from.cluster}: ${from.trustAnchorFingerprints.join(', ')}; ${to.cluster}: ${to.trustAnchorFingerprints.join(', ')}); ` +
        'linked clusters need one common root: give both the same --trust-anchor (or --cacerts with the same root) at strait up',
    );
  }
  return problems;
}

function sharedAnchor(a: ClusterInfo, b: ClusterInfo): string | undefined {
  return a.trustAnchorFingerprints.find((f) => b.trustAnchorFingerprints.includes(f));
}

export interface LinkRequest {
  /** Where --to reaches --from's gateway; default what --from advertises. */
  gatewayAddress?: string;
  selector?: LabelSelector;
  /** Namespace sameness over this link; unset: the mesh's setting. */
  sameness?: boolean;
}

/** What `strait link` writes into the consuming cluster: the namespace, the credential's Secret and the Link. */
export function linkResources(target: ClusterInfo, consumer: ClusterInfo, token: string | undefined, request: LinkRequest = {}): Resource[] {
  const secret = credentialsSecretName(target.cluster);
  const spec: LinkSpec = {
    targetClusterName: target.cluster,
    targetClusterId: target.clusterId,
    gatewayAddress: request.gatewayAddress ?? target.gatewayAddress,
    credentialsSecret: secret,
    probeSpec: { period: '3s', failureThreshold: 3, timeout: '1s' },
    ...(request.selector ? { selector: request.selector } : {}),
    ...(request.sameness !== undefined ? { sameness: request.sameness } : {}),
    ...(sharedAnchor(target, consumer) ? { trustAnchorFingerprint: sharedAnchor(target, consumer)! } : {}),
  };
  const credential: Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'strait.dev/link-credential',
    metadata: { name: secret, namespace: MULTICLUSTER_NAMESPACE, labels: { 'strait.dev/target-cluster': target.cluster } },
    ...(token === undefined ? { stringData: { token: PRINT_PLACEHOLDER } } : { data: { token: Buffer.from(token).toString('base64') } }),
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: MULTICLUSTER_NAMESPACE } },
    credential,
    { apiVersion: 'strait.dev/v1alpha1', kind: 'Link', metadata: { name: target.cluster, namespace: MULTICLUSTER_NAMESPACE }, spec },
  ];
}

/** A kubectl-style selector (`app=web,tier in (a,b)`) as an object. */
export function selectorFrom(text: string): LabelSelector {
  let requirements;
  try {
    requirements = parseSelector(text);
  } catch (err) {
    if (err instanceof SelectorSyntaxError) throw new UsageError(`--selector: ${err.message}`);
    throw err;
  }
  if (requirements.length === 0) throw new UsageError('--selector must not be empty');
  const matchLabels: Record<string, string> = {};
  const matchExpressions = requirements.filter((r) => {
    if (r.operator !== 'In' || r.values?.length !== 1 || r.key in matchLabels) return true;
    matchLabels[r.key] = r.values[0]!;
    return false;
  });
  return { ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}), ...(matchExpressions.length > 0 ? { matchExpressions } : {}) };
}

/** Both clusters, running, with their info; refuses a cluster linked to itself before asking anything. */
async function sides(home: string, names: [string, string]): Promise<[Side, Side]> {
  if (names[0] === names[1]) throw new CliError(`cannot link cluster ${names[0]} to itself`);
  const entries = names.map((name) => pickCluster(home, name));
  const found = await Promise.all(
    entries.map(async (entry): Promise<Side> => {
      const client = new AdminClient(paths.socket(home, entry.name), entry.name);
      return { name: entry.name, client, info: await client.clusterInfo() };
    }),
  );
  return [found[0]!, found[1]!];
}

function refuse(from: Side, to: Side): void {
  const problems = linkProblems(from.info, to.info);
  if (problems.length > 0) throw new CliError(`cannot link ${from.name} to ${to.name}; nothing was changed:`, 1, problems);
}

/** Mints in `from`, writes in `to`; revokes the new credential if `to` refuses. Returns the credential and what `to` did. */
async function link(from: Side, to: Side, request: LinkRequest & { lifetimeMs?: number }): Promise<{ credential: IssuedCredential; lines: string[] }> {
  const credential = await from.client.mintLinkCredential({ consumer: to.name, selector: request.selector, lifetimeMs: request.lifetimeMs });
  let results;
  try {
    results = await to.client.apply(linkResources(from.info, to.info, credential.token, request));
  } catch (err) {
    await from.client.revokeLinkCredentials({ consumer: to.name, only: credential.id }).catch(() => undefined);
    throw err;
  }
  // The link works with the new credential; earlier ones for the same cluster are revoked.
  const revoked = await from.client.revokeLinkCredentials({ consumer: to.name, except: credential.id });
  const lines = [
    `credential ${credential.id} minted by ${from.name} for ${to.name}, valid until ${credential.expiresAt}${revoked.length > 0 ? ` (revoked the earlier ${revoked.join(', ')})` : ''}`,
    ...results.map((r) => `${qualified(r.object)} ${r.outcome} (${to.name})`),
  ];
  return { credential, lines };
}

/** Removes the link that lets `to` use `from`'s exports: the Link, its credential and mirrors in `to`, the credential in `from`. */
async function unlink(from: Side, to: Side): Promise<string[]> {
  const lines: string[] = [];
  const refs = [
    { kind: 'Link', namespace: MULTICLUSTER_NAMESPACE, name: from.name },
    { kind: 'Secret', namespace: MULTICLUSTER_NAMESPACE, name: credentialsSecretName(from.name) },
  ];
  const deleted = (await to.client.delete(refs)).filter((r) => r.deleted);
  for (const r of deleted) lines.push(`${r.ref.kind === 'Link' ? 'link.strait.dev' : 'secret'}/${r.ref.name} deleted (${to.name})`);
  // The link controller removes the mirrors as its Link goes; whatever it left is removed here.
  const mirrors = await waitForMirrorsGone(to, from.name);
  if (mirrors.length > 0) await to.client.delete(mirrors);
  const revoked = await from.client.revokeLinkCredentials({ consumer: to.name });
  if (revoked.length > 0) lines.push(`revoked credential${revoked.length > 1 ? 's' : ''} ${revoked.join(', ')} in ${from.name}`);
  if (lines.length === 0) throw new CliError(`there is no link from ${from.name} to ${to.name}`);
  return lines;
}

const MIRROR_REMOVAL_WAIT_MS = 10_000;

/** The mirrors of `target` still in `side` after the wait (none once its link controller has removed them). */
async function waitForMirrorsGone(side: Side, target: string): Promise<{ kind: string; namespace?: string; name: string }[]> {
  const deadline = Date.now() + MIRROR_REMOVAL_WAIT_MS;
  for (;;) {
    const left = [];
    for (const [kind, selector] of Object.entries(mirrorSelectors(target))) {
      for (const o of (await side.client.list(kind, { selector })).items) left.push({ kind, namespace: o.metadata.namespace, name: o.metadata.name });
    }
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function qualified(o: Resource): string {
  const kind = o.kind === 'Link' ? 'link.strait.dev' : o.kind.toLowerCase();
  return `${kind}/${o.metadata.name}`;
}

function lifetime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms < 1000) throw new UsageError(`--credential-lifetime: must be a duration of at least 1s such as 8760h, got ${JSON.stringify(text)}`);
  return Math.round(ms);
}

/** Links `a` and `b` both ways, all or nothing; returns what was minted and written, a line each. */
export async function connectClusters(home: string, a: string, b: string, request: Pick<LinkRequest, 'sameness'> = {}): Promise<string[]> {
  const [first, second] = await sides(home, [a, b]);
  refuse(first, second);
  const there = await link(first, second, request);
  let back;
  try {
    back = await link(second, first, request);
  } catch (err) {
    // All or nothing: the first direction is taken back.
    await unlink(first, second).catch(() => undefined);
    throw err;
  }
  return [...there.lines, ...back.lines];
}

interface LinkOptions {
  from: string;
  to: string;
  gatewayAddress?: string;
  selector?: string;
  credentialLifetime?: string;
  print?: boolean;
  sameness?: boolean;
}

const SAMENESS_HELP = 'namespace sameness over this link: every service merges with its namesake (default: the mesh setting, strait up --sameness)';
const NO_SAMENESS_HELP = 'no namespace sameness over this link, whatever the mesh setting';

export function registerLinkCommands(program: Command): void {
  program
    .command('link')
    .description('let one cluster use the services another exports: mints a credential in --from and writes it and a Link into --to')
    .requiredOption('--from <cluster>', 'the cluster whose exported services become usable')
    .requiredOption('--to <cluster>', 'the cluster that mirrors them')
    .option('--gateway-address <host:port>', "where --to reaches --from's gateway (default: the address --from advertises)")
    .option('--selector <selector>', 'which services to mirror, e.g. app=web (default: labelled mirror.linkerd.io/exported=true or strait.dev/export=true)')
    .option('--credential-lifetime <duration>', 'how long the credential is valid, e.g. 720h (default 8760h)')
    .option('--sameness', SAMENESS_HELP)
    .option('--no-sameness', NO_SAMENESS_HELP)
    .option('--print', 'print what would be written into --to as YAML, with a placeholder for the credential; mint and change nothing')
    .action(async (opts: LinkOptions) => {
      const request = {
        gatewayAddress: opts.gatewayAddress,
        selector: opts.selector === undefined ? undefined : selectorFrom(opts.selector),
        lifetimeMs: lifetime(opts.credentialLifetime),
        sameness: opts.sameness,
      };
      const [from, to] = await sides(straitHome(), [opts.from, opts.to]);
      refuse(from, to);
      if (opts.print) {
        console.log(linkResources(from.info, to.info, undefined, request).map((r) => toYaml(r).trimEnd()).join('\n---\n'));
        return;
      }
      const { lines } = await link(from, to, request);
      console.log(`${colour.ok('linked')}: ${to.name} now mirrors the services ${from.name} exports`);
      for (const line of lines) console.log(`  ${line}`);
      console.log(colour.dim(`see it with: strait get links -n ${MULTICLUSTER_NAMESPACE} --cluster ${to.name}`));
    });

  program
    .command('unlink')
    .description('remove the link that lets --to use the services of --from: its Link, credential and mirrors in --to, and the credential in --from')
    .requiredOption('--from <cluster>', 'the cluster whose services were mirrored')
    .requiredOption('--to <cluster>', 'the cluster that mirrored them')
    .action(async (opts: { from: string; to: string }) => {
      const [from, to] = await sides(straitHome(), [opts.from, opts.to]);
      const lines = await unlink(from, to);
      console.log(`${colour.ok('unlinked')}: ${to.name} no longer mirrors the services of ${from.name}`);
      for (const line of lines) console.log(`  ${line}`);
    });

  program
    .command('connect')
    .description('link two clusters both ways, so each can use what the other exports (as cilium clustermesh connect)')
    .argument('<cluster-a>')
    .argument('<cluster-b>')
    .option('--sameness', SAMENESS_HELP)
    .option('--no-sameness', NO_SAMENESS_HELP)
    .action(async (a: string, b: string, opts: { sameness?: boolean }) => {
      const lines = await connectClusters(straitHome(), a, b, { sameness: opts.sameness });
      console.log(`${colour.ok('connected')}: ${a} and ${b} each mirror the services the other exports`);
      for (const line of lines) console.log(`  ${line}`);
    });
}
