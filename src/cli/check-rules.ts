// What `strait check` concludes from what it read of a cluster: pure functions from the facts to
// √/× lines (as `linkerd check` and `linkerd multicluster check` print them), each × naming the
// object and saying what to do; and the text those lines are printed as.
import type { Pod } from '../api/kinds.js';
import { isSliceEndpointReady, SLICE_SERVICE_LABEL, type EndpointSlice } from '../api/kinds/endpointslice.js';
import { secretValue, type Secret } from '../api/kinds/secret.js';
import { MIRROR_LABELS, MULTICLUSTER_NAMESPACE, type Link, type LinkStatus } from '../api/kinds/strait.js';
import { isMeshed, PROXY_CONTAINER } from '../api/mesh.js';
import type { Resource } from '../api/types.js';
import type { GatewayStatusReport } from '../control/admin.js';
import type { Health } from '../control/admin-client.js';
import { PROXY_VERSION_ANNOTATION } from '../control/injector.js';

export interface CheckResult {
  /** The group it is printed under, e.g. `strait-multicluster`. */
  section: string;
  /** What holds when it passes, e.g. "remote gateways are alive". */
  name: string;
  ok: boolean;
  /** Under √: what was checked, one line per object; under ×: what failed, each line naming the object. */
  details: string[];
  /** What to do next, with the command to run where there is one. */
  hints: string[];
}

export const SECTIONS = {
  controlPlane: 'strait-control-plane',
  identity: 'strait-identity',
  dataPlane: 'strait-data-plane',
  multicluster: 'strait-multicluster',
} as const;

const HOUR = 3_600_000;
/** An issuer or trust anchor expiring sooner than this fails the check: it must be replaced now. */
export const MIN_VALIDITY_MS = 24 * HOUR;

function check(section: string, name: string, problems: { details: string[]; hints: string[] }, passed: string[] = []): CheckResult {
  const ok = problems.details.length === 0;
  return { section, name, ok, details: ok ? passed : problems.details, hints: ok ? [] : [...new Set(problems.hints)] };
}

function problems(): { details: string[]; hints: string[]; add(detail: string, hint?: string): void } {
  const p = {
    details: [] as string[],
    hints: [] as string[],
    add(detail: string, hint?: string) {
      p.details.push(detail);
      if (hint !== undefined) p.hints.push(hint);
    },
  };
  return p;
}

const ref = (o: Resource) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;

// ---- control plane ----

/**
 * Whether the control plane answers (`health` is the error when it does not, `running` false when
 * nothing listens), and runs the CLI's version.
 */
export function controlPlaneChecks(cluster: string, health: Health | { error: Error; running: boolean }, cliVersion: string, logFile: string): CheckResult[] {
  const section = SECTIONS.controlPlane;
  if ('error' in health) {
    const detail = health.running ? `the control plane of ${cluster} does not answer: ${health.error.message}` : `the control plane of ${cluster} is not running`;
    return [{ section, name: 'control plane is running', ok: false, details: [detail], hints: [`${health.running ? 'see why in its log' : 'see why it stopped in its log'}: ${logFile}; start it with: strait up`] }];
  }
  const running = check(section, 'control plane is running', problems(), [`cluster ${health.cluster}, pid ${health.pid}`]);
  const versions = problems();
  if (health.version !== cliVersion) {
    versions.add(`the control plane of ${cluster} runs ${health.version}, the CLI is ${cliVersion}`, 'restart the cluster with this CLI: strait down, then strait up');
  }
  return [running, check(section, 'control plane and cli versions match', versions, [health.version])];
}

// ---- identity ----

export interface CertificateFacts {
  subject: string;
  notBefore: string;
  notAfter: string;
}

/** What the control plane's certificates say; made from its PEM by the caller (x509 is slow to load). */
export interface IdentityFacts {
  anchors: CertificateFacts[];
  /** The issuer the cluster's CA signs with; undefined when the control plane's chain holds none. */
  issuer?: CertificateFacts;
  /** Why the issuer is not vouched for by a trust anchor (signatures), or undefined when it is. */
  chainProblem?: string;
}

function duration(ms: number): string {
  if (ms < 2 * HOUR) return `${Math.max(0, Math.round(ms / 60_000))}m`;
  if (ms < 48 * HOUR) return `${Math.round(ms / HOUR)}h`;
  return `${Math.round(ms / (24 * HOUR))}d`;
}

function validityProblem(what: string, cert: CertificateFacts, now: Date): string | undefined {
  if (now < new Date(cert.notBefore)) return `${what} '${cert.subject}' is not valid until ${cert.notBefore}`;
  if (now > new Date(cert.notAfter)) return `${what} '${cert.subject}' expired on ${cert.notAfter}`;
  return undefined;
}

/** `reinstall` is how the cluster takes a new issuer, when not by `strait up` (on Kubernetes: strait install). */
export function identityChecks(cluster: string, facts: IdentityFacts | Error, now: Date, reinstall?: string): CheckResult[] {
  const section = SECTIONS.identity;
  const replaceIssuer =
    `issue a new issuer under the mesh's trust anchor (step certificate create … --profile intermediate-ca) and ${reinstall ? 'install it' : `restart ${cluster} with it`}: ` +
    (reinstall ?? `strait down, then strait up --clusters ${cluster} --trust-anchor ca.crt --issuer-cert ${cluster}=issuer.crt --issuer-key ${cluster}=issuer.key`);
  if (facts instanceof Error) {
    return [{ section, name: 'issuer certificate is valid', ok: false, details: [`cluster ${cluster}: cannot read the certificates of its control plane: ${facts.message}`], hints: ['restart the cluster with this CLI: strait down, then strait up'] }];
  }
  const anchors = problems();
  if (facts.anchors.length === 0) anchors.add(`cluster ${cluster} has no trust anchor`, replaceIssuer);
  for (const anchor of facts.anchors) {
    const problem = validityProblem('trust anchor', anchor, now);
    if (problem) anchors.add(problem, 'make a new trust anchor and issuers for every cluster (strait certs create --clusters … --out DIR) and restart the clusters with them (strait up --trust-anchor …)');
  }
  const results = [check(section, 'trust anchors are within their validity period', anchors)];
  const issuer = facts.issuer;
  if (!issuer) {
    results.push({ section, name: 'issuer certificate is within its validity period', ok: false, details: [`the control plane of ${cluster} presents no issuer certificate`], hints: [replaceIssuer] });
    return results;
  }
  const validity = problems();
  const invalid = validityProblem('issuer certificate', issuer, now);
  if (invalid) validity.add(invalid, replaceIssuer);
  results.push(check(section, 'issuer certificate is within its validity period', validity, [`'${issuer.subject}' valid until ${issuer.notAfter}`]));
  if (!invalid) {
    const left = Date.parse(issuer.notAfter) - now.getTime();
    const soon = problems();
    if (left < MIN_VALIDITY_MS) soon.add(`issuer certificate '${issuer.subject}' expires in ${duration(left)} (${issuer.notAfter}); then no proxy gets a certificate`, replaceIssuer);
    results.push(check(section, `issuer certificate is valid for at least ${duration(MIN_VALIDITY_MS)}`, soon));
  }
  const chain = problems();
  if (facts.chainProblem) chain.add(facts.chainProblem, replaceIssuer);
  results.push(check(section, 'issuer certificate is issued by the trust anchors', chain));
  return results;
}

// ---- data plane ----

/** Why a meshed pod's proxy is not ready, or undefined when it is. */
function proxyProblem(pod: Pod, scrapeError: string | undefined): string | undefined {
  const phase = pod.status?.phase ?? 'Pending';
  if (phase !== 'Running') return `is ${phase}${pod.status?.reason ? ` (${pod.status.reason})` : ''}`;
  const proxy = pod.status?.containerStatuses?.find((c) => c.name === PROXY_CONTAINER);
  if (!proxy?.ready) {
    const waiting = proxy?.state?.waiting?.reason ?? proxy?.state?.terminated?.reason;
    return `its proxy is not ready${waiting ? ` (${waiting})` : ''}`;
  }
  if (scrapeError !== undefined) return `the control plane cannot read its proxy: ${scrapeError}`;
  return undefined;
}

/**
 * Every meshed pod's proxy is ready (its status, and the control plane's metrics collector reads it;
 * `scrapeErrors` by `namespace/name`) and runs the CLI's version (the injector records it on the pod).
 */
export function dataPlaneChecks(cluster: string, pods: Pod[], scrapeErrors: Map<string, string>, cliVersion: string): CheckResult[] {
  const section = SECTIONS.dataPlane;
  const meshed = pods.filter((p) => isMeshed(p) && p.status?.phase !== 'Succeeded');
  const at = `--cluster ${cluster}`;
  const ready = problems();
  const versions = problems();
  for (const pod of meshed) {
    const name = pod.metadata.name;
    const ns = pod.metadata.namespace ?? 'default';
    const problem = proxyProblem(pod, scrapeErrors.get(`${ns}/${name}`));
    if (problem) ready.add(`Pod ${ns}/${name}: ${problem}`, `see why: strait describe pod ${name} -n ${ns} ${at}; strait logs ${name} -c ${PROXY_CONTAINER} -n ${ns} ${at}`);
    const version = pod.metadata.annotations?.[PROXY_VERSION_ANNOTATION];
    if (version !== cliVersion) {
      const owner = pod.metadata.ownerReferences?.[0];
      versions.add(
        `Pod ${ns}/${name} runs proxy ${version === undefined ? 'of an unknown version (no ' + PROXY_VERSION_ANNOTATION + ' annotation)' : version}, the CLI is ${cliVersion}`,
        `restart it so it gets the current proxy: strait delete pod ${name} -n ${ns} ${at}${owner ? ` (its ${owner.kind} ${owner.name} makes a new one)` : ', then apply it again'}`,
      );
    }
  }
  const summary = meshed.length === 0 ? [`no meshed pods in cluster ${cluster}`] : [`${meshed.length} meshed pod${meshed.length === 1 ? '' : 's'}`];
  return [check(section, 'data plane proxies are ready', ready, summary), check(section, 'data plane and cli versions match', versions, meshed.length === 0 ? [] : [cliVersion])];
}

// ---- multicluster ----

export interface MulticlusterFacts {
  cluster: string;
  /** Other clusters known here, for the hint when there are no Links. */
  otherClusters: string[];
  /** Links in every namespace. */
  links: Link[];
  /** What the running link controllers report, by target cluster (fresher than the stored status). */
  controllers: Record<string, LinkStatus>;
  /** The credential Secrets the Links name, by name (in strait-system); absent when missing. */
  secrets: Map<string, Secret>;
  /** SHA-256 fingerprints of this cluster's trust anchors. */
  ownAnchors: string[];
  /** This cluster's own gateway; undefined when the control plane runs none. */
  gateway?: GatewayStatusReport;
  /** Services labelled as mirrors. */
  mirrors: Resource[];
  /** EndpointSlices written for mirrors. */
  slices: EndpointSlice[];
}

const READ_ONLY_REASONS = new Set(['WrongNamespace', 'LinkToSelf', 'InvalidSpec', 'WrongCluster']);
const CREDENTIAL_REASONS = new Set(['CredentialsMissing', 'CredentialsRejected', 'PermissionDenied']);

function ms(v: number): string {
  return v < 10 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`;
}

export function multiclusterChecks(facts: MulticlusterFacts): CheckResult[] {
  const section = SECTIONS.multicluster;
  const { cluster } = facts;
  const at = `--cluster ${cluster}`;
  const results: CheckResult[] = [];

  if (facts.gateway) {
    const own = problems();
    if (!facts.gateway.running) {
      own.add(`the gateway of ${cluster} (${facts.gateway.address}) is stopped: linked clusters cannot reach ${cluster}'s services`, `start it: strait gateway start ${at}`);
    }
    results.push(check(section, "this cluster's gateway is running", own, [facts.gateway.address]));
  }

  const linked = facts.links.filter((l) => l.metadata.namespace === MULTICLUSTER_NAMESPACE);
  const linkName = (l: Link) => `Link ${ref(l)}`;
  const statusOf = (l: Link): LinkStatus | undefined => facts.controllers[l.metadata.name] ?? l.status;
  const synced = (l: Link) => statusOf(l)?.conditions?.find((c) => c.type === 'Synced');
  const relink = (target: string) => `link again: strait link --from ${target} --to ${cluster}`;

  // Link resources are valid
  const valid = problems();
  if (facts.links.length === 0) {
    const other = facts.otherClusters[0] ?? 'OTHER';
    valid.add(`no Links in cluster ${cluster}`, `link a cluster: strait link --from ${other} --to ${cluster}${facts.otherClusters.length > 1 ? ' (or another of ' + facts.otherClusters.join(', ') + ')' : ''}`);
  }
  for (const link of facts.links) {
    const target = link.spec?.targetClusterName ?? link.metadata.name;
    if (link.metadata.namespace !== MULTICLUSTER_NAMESPACE) {
      valid.add(`${linkName(link)} is not in namespace ${MULTICLUSTER_NAMESPACE}, so it does nothing`, `delete it (strait delete link ${link.metadata.name} -n ${link.metadata.namespace} ${at}) and ${relink(target)}`);
      continue;
    }
    const condition = synced(link);
    if (condition && READ_ONLY_REASONS.has(condition.reason)) valid.add(`${linkName(link)}: ${condition.message}`, `fix it, or delete it and ${relink(target)}`);
  }
  results.push(check(section, 'Link resources are valid', valid, linked.map((l) => l.metadata.name)));
  if (linked.length === 0) return [...results, ...mirrorChecks(facts)];

  // remote cluster access credentials are valid
  const credentials = problems();
  for (const link of linked) {
    const target = link.metadata.name;
    const secretName = link.spec?.credentialsSecret ?? '';
    const secret = facts.secrets.get(secretName);
    const condition = synced(link);
    if (!secret) credentials.add(`${linkName(link)}: its credential, secret ${MULTICLUSTER_NAMESPACE}/${secretName} (spec.credentialsSecret), does not exist`, relink(target));
    else if (!secretValue(secret, 'token')) credentials.add(`${linkName(link)}: secret ${MULTICLUSTER_NAMESPACE}/${secretName} holds no token`, relink(target));
    else if (condition && CREDENTIAL_REASONS.has(condition.reason)) credentials.add(`${linkName(link)}: ${condition.message}`, relink(target));
    else if (condition?.status !== 'True' && !statusOf(link)?.clusterId) {
      credentials.add(`${linkName(link)}: cluster ${target} has not accepted the credential yet: ${condition?.message ?? 'its controller has not reported'}`, `see: strait remote-clusters ${at}`);
    }
  }
  results.push(check(section, 'remote cluster access credentials are valid', credentials, linked.map((l) => l.metadata.name)));

  // clusters share trust anchors
  const anchors = problems();
  for (const link of linked) {
    const target = link.metadata.name;
    const fingerprint = link.spec?.trustAnchorFingerprint;
    const condition = synced(link);
    if (fingerprint && !facts.ownAnchors.includes(fingerprint)) {
      anchors.add(`${linkName(link)} was made with trust anchor ${fingerprint}, which cluster ${cluster} does not have`, `give both clusters the same trust anchor, then ${relink(target)}`);
    } else if (condition?.reason === 'TrustAnchorMismatch') {
      anchors.add(`${linkName(link)}: ${condition.message}`, `give both clusters the same trust anchor, then ${relink(target)}`);
    }
  }
  results.push(check(section, 'clusters share trust anchors', anchors, linked.map((l) => l.metadata.name)));

  // link controllers are running
  const controllers = problems();
  for (const link of linked) {
    const target = link.metadata.name;
    const condition = synced(link);
    if (!facts.controllers[target]) controllers.add(`${linkName(link)}: no link controller runs for it${condition?.message ? `: ${condition.message}` : ''}`, `see the control plane's log; restart it: strait down, then strait up`);
    else if (condition?.status !== 'True') controllers.add(`${linkName(link)}: not synced (${condition?.reason ?? 'Unknown'}): ${condition?.message ?? 'no status yet'}`, `see: strait remote-clusters ${at}`);
  }
  results.push(check(section, 'link controllers are running', controllers, linked.map((l) => l.metadata.name)));

  // remote gateways are alive
  const gateways = problems();
  const alive: string[] = [];
  for (const link of linked) {
    const target = link.metadata.name;
    const gateway = statusOf(link)?.gateway;
    const address = link.spec?.gatewayAddress ?? '';
    const hint = `see: strait gateways ${at}; check that cluster ${target}'s gateway runs at ${address} (strait gateway start --cluster ${target})`;
    if (gateway?.alive === true) alive.push(`${target}${gateway.latencyMs ? ` (latency p50 ${ms(gateway.latencyMs.p50)}, p99 ${ms(gateway.latencyMs.p99)})` : ''}`);
    else if (gateway?.alive === false) gateways.add(`${linkName(link)}: the gateway of ${target} at ${address} is not alive: ${gateway.consecutiveFailures} probes failed in a row; last: ${gateway.lastError ?? 'no answer'}`, hint);
    else gateways.add(`${linkName(link)}: the gateway of ${target} at ${address} has not answered a probe yet${gateway?.lastError ? `; last: ${gateway.lastError}` : ''}`, hint);
  }
  results.push(check(section, 'remote gateways are alive', gateways, alive));

  return [...results, ...mirrorChecks(facts)];
}

/** Every mirror has ready endpoints, and every mirror belongs to a Link. */
function mirrorChecks(facts: MulticlusterFacts): CheckResult[] {
  const section = SECTIONS.multicluster;
  const { cluster } = facts;
  const at = `--cluster ${cluster}`;
  const linkFor = new Map(facts.links.filter((l) => l.metadata.namespace === MULTICLUSTER_NAMESPACE).map((l) => [l.metadata.name, l]));
  const endpoints = problems();
  const orphans = problems();
  let linkedMirrors = 0;
  for (const mirror of facts.mirrors) {
    const from = mirror.metadata.labels?.[MIRROR_LABELS.clusterName];
    const name = mirror.metadata.name;
    const ns = mirror.metadata.namespace ?? 'default';
    const link = from === undefined ? undefined : linkFor.get(from);
    if (!link) {
      orphans.add(
        `Service ${ns}/${name}: orphaned mirror of cluster ${from ?? '(none named)'}, which has no Link in ${cluster}`,
        `delete it (strait delete svc ${name} -n ${ns} ${at}) or re-link: strait link --from ${from ?? 'OTHER'} --to ${cluster}`,
      );
      continue;
    }
    linkedMirrors++;
    const ready = facts.slices
      .filter((s) => (s.metadata.namespace ?? 'default') === ns && s.metadata.labels?.[SLICE_SERVICE_LABEL] === name)
      .reduce((n, s) => n + s.endpoints.filter(isSliceEndpointReady).length, 0);
    if (ready > 0) continue;
    const gatewayDown = (facts.controllers[link.metadata.name] ?? link.status)?.gateway?.alive === false;
    endpoints.add(
      `Service ${ns}/${name} (mirror of ${from}) has no ready endpoints${gatewayDown ? `: the gateway of ${from} is not alive` : ''}`,
      gatewayDown ? `see: strait gateways ${at}` : `see the service's pods in ${from}: strait get pods -n ${ns} --cluster ${from}`,
    );
  }
  return [
    check(section, 'all mirror services have endpoints', endpoints, linkedMirrors === 0 ? [] : [`${linkedMirrors} mirror service${linkedMirrors === 1 ? '' : 's'}`]),
    check(section, 'all mirror services are part of a Link', orphans),
  ];
}

// ---- output ----

export interface Marks {
  ok: (s: string) => string;
  bad: (s: string) => string;
}

const plain: Marks = { ok: (s) => s, bad: (s) => s };

/** The checks as `linkerd check` prints them: a header per section, √ or × per check, indented details and hints. */
export function formatChecks(results: CheckResult[], marks: Marks = plain): string {
  const lines: string[] = [];
  let section: string | undefined;
  for (const r of results) {
    if (r.section !== section) {
      if (section !== undefined) lines.push('');
      section = r.section;
      lines.push(section, '-'.repeat(section.length));
    }
    lines.push(`${r.ok ? marks.ok('√') : marks.bad('×')} ${r.name}`);
    for (const d of r.details) lines.push(`    * ${d}`);
    for (const h of r.hints) lines.push(`    ${h}`);
  }
  const ok = results.every((r) => r.ok);
  lines.push('', `Status check results are ${ok ? marks.ok('√') : marks.bad('×')}`);
  return lines.join('\n');
}

/** The checks as JSON: one entry per check, details and hints as text. */
export function checksJson(cluster: string, results: CheckResult[]): { cluster: string; ok: boolean; checks: { section: string; name: string; ok: boolean; message: string; hint?: string }[] } {
  return {
    cluster,
    ok: results.every((r) => r.ok),
    checks: results.map((r) => ({
      section: r.section,
      name: r.name,
      ok: r.ok,
      message: r.details.join('\n'),
      ...(r.hints.length > 0 ? { hint: r.hints.join('\n') } : {}),
    })),
  };
}
