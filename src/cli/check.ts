// `strait check [--multicluster]`: reads a cluster's state over its admin API and says, check by
// check, what holds (√) and what does not (×, naming the object and what to do), as `linkerd check`
// and `linkerd multicluster check` do. Exit 0 when every check passes, 1 otherwise.
import type { Command } from 'commander';
import { toJson } from '../api/codec.js';
import { parseDuration } from '../api/quantity.js';
import type { Pod } from '../api/kinds.js';
import type { EndpointSlice } from '../api/kinds/endpointslice.js';
import type { Secret } from '../api/kinds/secret.js';
import { MIRROR_LABELS, MULTICLUSTER_NAMESPACE, type Link } from '../api/kinds/strait.js';
import { VERSION } from '../api/version.js';
import type { IdentityReport } from '../control/admin.js';
import { AdminError, NotRunningError, type AdminClient } from '../control/admin-client.js';
import type { MulticlusterStatus } from '../control/links/multicluster.js';
import type { x509 } from '../identity/x509.js';
import { paths, readMesh } from '../runtime/home.js';
import { checksJson, controlPlaneChecks, dataPlaneChecks, formatChecks, identityChecks, multiclusterChecks, type CheckResult, type IdentityFacts, type MulticlusterFacts } from './check-rules.js';
import { clusterContext, UsageError, type ClusterContext } from './context.js';
import { wantsKubernetes, withKubeOptions } from './kube-context.js';
import { colour, spinner } from './output.js';

/** The window of the metrics read that tells whether the control plane can read every proxy (the read itself is fresh). */
const SCRAPE_WINDOW_SECONDS = 10;

/** Undefined when the control plane does not serve the route (404): that part is not checked. */
async function optional<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof AdminError && err.status === 404) return undefined;
    throw err;
  }
}

async function identityFacts(client: AdminClient): Promise<IdentityFacts | Error> {
  let report: IdentityReport;
  try {
    report = await client.identity();
  } catch (err) {
    if (err instanceof AdminError) return err;
    throw err;
  }
  // x509 is slow to load: only this check pays for it.
  const { parseCertificates, PkiError } = await import('../identity/pem.js');
  try {
    const chain = parseCertificates(report.certChainPem, 'the control plane certificate chain');
    const anchors = parseCertificates(report.trustBundlePem, 'the trust bundle');
    const facts = (c: x509.X509Certificate) => ({ subject: c.subject, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() });
    // The control plane's own certificate first, then the issuer it was signed by, then any intermediates.
    const issuing = chain.slice(1);
    const issuer = issuing[0];
    return { anchors: anchors.map(facts), ...(issuer ? { issuer: facts(issuer), chainProblem: await chainProblem(issuing, anchors) } : {}) };
  } catch (err) {
    if (err instanceof PkiError) return err;
    throw err;
  }
}

/** Why `issuing` (issuer first) is not vouched for, signature by signature, up to an anchor; undefined when it is. */
export async function chainProblem(issuing: x509.X509Certificate[], anchors: x509.X509Certificate[]): Promise<string | undefined> {
  const signedBy = async (child: x509.X509Certificate, parent: x509.X509Certificate) => {
    try {
      return await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
    } catch {
      return false; // a key of another algorithm cannot have made the signature
    }
  };
  for (let i = 0; i + 1 < issuing.length; i++) {
    if (!(await signedBy(issuing[i]!, issuing[i + 1]!))) return `'${issuing[i]!.subject}' is not signed by the next certificate of the chain, '${issuing[i + 1]!.subject}'`;
  }
  const top = issuing[issuing.length - 1]!;
  for (const anchor of anchors) if (await signedBy(top, anchor)) return undefined;
  return `issuer certificate '${top.subject}' was issued by '${top.issuer}', which is none of the trust anchors (${anchors.map((a) => `'${a.subject}'`).join(', ')})`;
}

async function coreChecks(ctx: ClusterContext): Promise<CheckResult[]> {
  const { client, cluster } = ctx;
  const [pods, stats, identity] = await Promise.all([
    client.list('Pod').then((r) => r.items as Pod[]),
    optional(client.stats(SCRAPE_WINDOW_SECONDS)),
    identityFacts(client),
  ]);
  const scrapeErrors = new Map((stats?.pods ?? []).filter((p) => p.error !== undefined).map((p) => [`${p.namespace}/${p.pod}`, p.error!]));
  return [...identityChecks(cluster.name, identity, new Date()), ...dataPlaneChecks(cluster.name, pods, scrapeErrors, VERSION)];
}

async function multiclusterFacts(ctx: ClusterContext): Promise<MulticlusterFacts> {
  const { client, cluster } = ctx;
  const [links, status, secrets, info, gateway, mirrors, slices] = await Promise.all([
    client.list('Link').then((r) => r.items as Link[]),
    client.multiclusterStatus() as Promise<MulticlusterStatus>,
    client.list('Secret', { namespace: MULTICLUSTER_NAMESPACE }).then((r) => r.items as Secret[]),
    client.clusterInfo(),
    optional(client.gateway()),
    client.list('Service', { selector: `${MIRROR_LABELS.mirroredService}=true` }).then((r) => r.items),
    client.list('EndpointSlice', { selector: MIRROR_LABELS.clusterName }).then((r) => r.items as EndpointSlice[]),
  ]);
  return {
    cluster: cluster.name,
    otherClusters: readMesh(ctx.home).clusters.map((c) => c.name).filter((name) => name !== cluster.name),
    links,
    controllers: status.links,
    secrets: new Map(secrets.map((s) => [s.metadata.name, s])),
    ownAnchors: info.trustAnchorFingerprints,
    ...(gateway ? { gateway } : {}),
    mirrors,
    slices,
  };
}

async function runChecks(ctx: ClusterContext, multicluster: boolean): Promise<CheckResult[]> {
  const health = await ctx.client.health().catch((err: unknown) => ({ error: err instanceof Error ? err : new Error(String(err)), running: !(err instanceof NotRunningError) }));
  const results = controlPlaneChecks(ctx.cluster.name, health, VERSION, paths.log(ctx.home, ctx.cluster.name));
  // Nothing else can be read from a control plane that does not answer.
  if ('error' in health) return results;
  const [core, links] = await Promise.all([coreChecks(ctx), multicluster ? multiclusterFacts(ctx).then(multiclusterChecks) : []]);
  return [...results, ...core, ...links];
}

/** `strait check --context C`: the same √/× lines, read from the Kubernetes API. */
async function runKubeChecks(cmd: Command, pre: boolean): Promise<{ cluster: string; results: CheckResult[] }> {
  const { kubeConnection, loadKubeConfig } = await import('./kube-context.js');
  const { kubeChecks, KUBE_SECTIONS } = await import('./kube-check.js');
  const { KubeApiError } = await import('../control/kube-api.js');
  try {
    const conn = await kubeConnection(cmd);
    return { cluster: conn.context, results: await kubeChecks(conn, pre) };
  } catch (err) {
    if (!(err instanceof KubeApiError)) throw err;
    const context = (await loadKubeConfig(cmd.optsWithGlobals())).getCurrentContext();
    // No status: nothing answered. A status: the server refused a read the checks need.
    const [name, hint] =
      err.status === undefined
        ? ['can reach the Kubernetes API server', 'check that the API server runs and the kubeconfig names its address: kubectl cluster-info']
        : ['can read what the checks need', 'use a context that may read the objects Strait installs (cluster-admin may)'];
    return { cluster: context, results: [{ section: KUBE_SECTIONS.api, name, ok: false, details: [err.message], hints: [hint] }] };
  }
}

/** The Kubernetes checks, run again every second while one fails and `waitMs` has not gone, behind a spinner naming what is awaited. */
async function waitForKubeChecks(cmd: Command, pre: boolean, waitMs: number): Promise<{ cluster: string; results: CheckResult[] }> {
  const deadline = Date.now() + waitMs;
  let outcome = await runKubeChecks(cmd, pre);
  if (waitMs === 0 || outcome.results.every((r) => r.ok)) return outcome;
  const progress = await spinner('');
  try {
    while (Date.now() < deadline && !outcome.results.every((r) => r.ok)) {
      const failing = outcome.results.find((r) => !r.ok)!;
      progress.text = `waiting for: ${failing.name} (${Math.ceil((deadline - Date.now()) / 1000)} s left)`;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      outcome = await runKubeChecks(cmd, pre);
    }
  } finally {
    progress.stop();
  }
  return outcome;
}

export function registerCheckCommand(program: Command): void {
  withKubeOptions(program.command('check'))
    .description('check that a cluster works — control plane, identity, proxies — and with --multicluster its links, gateways and mirrors (as linkerd check and linkerd multicluster check); with --context, a Kubernetes cluster; exit 1 on any ×')
    .option('--multicluster', 'also check the links to other clusters: credentials, trust anchors, link controllers, gateways, mirrors')
    .option('--pre', 'with --context: check that Strait can be installed (permissions, CRDs of other tools, Kubernetes version)')
    .option('--wait <duration>', 'with --context: check again until every check passes or this long has gone, e.g. 2m (as linkerd check --wait)', '0s')
    .option('-o, --output <format>', 'json')
    .action(async (opts: { multicluster?: boolean; pre?: boolean; wait: string; output?: string }, cmd: Command) => {
      if (opts.output !== undefined && opts.output !== 'json') throw new UsageError(`-o ${opts.output}: only json is supported`);
      const waitMs = parseDuration(opts.wait);
      if (waitMs === undefined || waitMs < 0) throw new UsageError(`--wait "${opts.wait}" is not a duration (use e.g. 30s or 2m)`);
      let cluster: string;
      let results: CheckResult[];
      if (wantsKubernetes(cmd)) {
        if (opts.multicluster) throw new UsageError('--multicluster is not yet checked on Kubernetes; drop it or use --cluster');
        ({ cluster, results } = await waitForKubeChecks(cmd, opts.pre ?? false, waitMs));
      } else {
        if (opts.wait !== '0s') throw new UsageError('--wait waits for a Kubernetes cluster after strait install: add --context');
        if (opts.pre) throw new UsageError('--pre checks a Kubernetes cluster before strait install: add --context');
        const ctx = clusterContext(cmd);
        cluster = ctx.cluster.name;
        results = await runChecks(ctx, opts.multicluster ?? false);
      }
      console.log(opts.output === 'json' ? toJson(checksJson(cluster, results)) : formatChecks(results, colour));
      process.exitCode = results.every((r) => r.ok) ? 0 : 1;
    });
}
