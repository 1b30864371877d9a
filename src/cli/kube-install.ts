// `strait install` and `strait uninstall` against a Kubernetes cluster. Install checks first and
// writes after: the account's permissions (SelfSubjectAccessReview), CRDs someone else installed, a
// server-side dry run; then applies every object server-side (so a second install changes nothing)
// and, if one fails, removes what this run created. Uninstall removes what carries Strait's label.
import { CRD_PART_OF_LABEL } from '../api/crds.js';
import { KubeApiError, kindPath, resourcePath, type KubeApi, type KubeObject } from '../control/kube-api.js';
import * as L from '../control/kube-layout.js';
import { TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY } from '../control/injector.js';
import { CliError } from './context.js';
import type { IssuerPem, ServingPem } from './install-pki.js';
import type { KubeConnection } from './kube-context.js';

const PLURAL_GROUP = (kind: string) => {
  const p = kindPath(kind);
  return { group: p.group, resource: p.plural, namespaced: p.namespaced };
};

export interface Access {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
}

/** `create clusterroles.rbac.authorization.k8s.io (cluster-wide)`, as kubectl auth can-i names it. */
export function accessText(a: Access): string {
  return `${a.verb} ${a.resource}${a.group ? `.${a.group}` : ''} ${a.namespace ? `in namespace ${a.namespace}` : '(cluster-wide)'}`;
}

/** The accesses the account lacks, asked of the API server one by one (SelfSubjectAccessReview). */
export async function missingAccess(api: KubeApi, wanted: Access[]): Promise<Access[]> {
  const unique = [...new Map(wanted.map((a) => [accessText(a), a])).values()];
  const answers = await Promise.all(
    unique.map(async (a) => {
      const review = await api.create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb: a.verb, group: a.group, resource: a.resource, ...(a.namespace ? { namespace: a.namespace } : {}) } },
      });
      return review.status?.allowed ? undefined : a;
    }),
  );
  return answers.filter((a): a is Access => a !== undefined);
}

/** What applying `objects` needs: get (to compare), create and patch (server-side apply) of each kind where it goes. */
export function installAccess(objects: KubeObject[]): Access[] {
  return objects.flatMap((o) => {
    const { group, resource, namespaced } = PLURAL_GROUP(o.kind);
    const namespace = namespaced ? o.metadata.namespace : undefined;
    return ['get', 'create', 'patch'].map((verb) => ({ verb, group, resource, ...(namespace ? { namespace } : {}) }));
  });
}

/** Throws naming each access the account lacks for `what`; nothing has been written yet. */
export async function requireAccess(conn: KubeConnection, wanted: Access[], what: string): Promise<void> {
  refuseMissing(conn.context, await missingAccess(conn.api, wanted), what);
}

function refuseMissing(context: string, missing: Access[], what: string): void {
  if (missing.length === 0) return;
  throw new CliError(
    `the account of context ${context} may not ${what}; nothing was changed. It lacks:`,
    1,
    [...missing.map((a) => `- ${accessText(a)}`), 'use a context with these permissions (cluster-admin has them), or ask an administrator to grant them; kubectl auth can-i VERB RESOURCE shows each'],
  );
}

const ownedByStrait = (o: { metadata: { labels?: Record<string, string> } }) => o.metadata.labels?.[L.PART_OF_LABEL] === L.PART_OF;

interface CrdLike extends KubeObject {
  spec?: { versions?: { name: string; served?: boolean }[] };
}

/** A CRD of Strait's that another tool installed (Linkerd's SMI extension installs TrafficSplit): reused when it serves the version Strait reads, else refused. */
export interface ForeignCrd {
  name: string;
  owner: string;
  served: string[];
  needed: string;
  reusable: boolean;
}

export async function foreignCrds(api: KubeApi, crds: KubeObject[]): Promise<ForeignCrd[]> {
  const found = await Promise.all(crds.map((crd) => api.get<CrdLike>(resourcePath(kindPath('CustomResourceDefinition'), crd.metadata.name))));
  const out: ForeignCrd[] = [];
  crds.forEach((crd, i) => {
    const existing = found[i];
    if (!existing || ownedByStrait(existing)) return;
    const labels = existing.metadata.labels ?? {};
    const owner = labels['app.kubernetes.io/managed-by'] ?? labels['linkerd.io/extension'] ?? labels[CRD_PART_OF_LABEL] ?? 'another tool';
    const served = (existing.spec?.versions ?? []).filter((v) => v.served !== false).map((v) => v.name);
    const ours = (crd as CrdLike).spec?.versions ?? [];
    const needed = (ours.find((v) => (v as { storage?: boolean }).storage) ?? ours[0])?.name ?? '';
    out.push({ name: crd.metadata.name, owner, served, needed, reusable: served.includes(needed) });
  });
  return out;
}

/** The PKI an earlier install left, reused so a second install changes nothing. */
export async function installedPki(api: KubeApi): Promise<{ issuer?: IssuerPem; webhookTls?: ServingPem }> {
  const ns = L.STRAIT_NAMESPACE;
  const [issuer, tls, anchors] = await Promise.all([
    api.get<KubeObject & { data?: Record<string, string> }>(resourcePath(kindPath('Secret'), L.ISSUER_SECRET, ns)),
    api.get<KubeObject & { data?: Record<string, string> }>(resourcePath(kindPath('Secret'), L.WEBHOOK_TLS_SECRET, ns)),
    api.get<KubeObject & { data?: Record<string, string> }>(resourcePath(kindPath('ConfigMap'), TRUST_ANCHORS_CONFIGMAP, ns)),
  ]);
  const text = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));
  const out: { issuer?: IssuerPem; webhookTls?: ServingPem } = {};
  const [crt, key, bundle] = [text(issuer?.data?.['tls.crt']), text(issuer?.data?.['tls.key']), anchors?.data?.[TRUST_ANCHORS_KEY]];
  if (crt && key && bundle) out.issuer = { trustAnchors: bundle, issuerCert: crt, issuerKey: key };
  const [tlsCrt, tlsKey] = [text(tls?.data?.['tls.crt']), text(tls?.data?.['tls.key'])];
  if (tlsCrt && tlsKey) out.webhookTls = { cert: tlsCrt, key: tlsKey };
  return out;
}

export type ApplyOutcome = 'created' | 'configured' | 'unchanged' | 'reused';

export interface Applied {
  object: KubeObject;
  outcome: ApplyOutcome;
  note?: string;
}

export const objectRef = (o: KubeObject) => {
  const { group, resource } = PLURAL_GROUP(o.kind);
  return `${resource}${group ? `.${group}` : ''}/${o.metadata.name}`;
};

/**
 * Whether applying `wanted` changed `old` into `now`, leaving out what controllers write meanwhile:
 * a status update bumps the resourceVersion, so objects with a generation (which counts spec
 * changes) are compared by it and by the labels and annotations install sets.
 */
export function changedByApply(wanted: KubeObject, old: KubeObject, now: KubeObject): boolean {
  const generation = (o: KubeObject) => o.metadata.generation as number | undefined;
  if (generation(old) === undefined || generation(now) === undefined) return old.metadata.resourceVersion !== now.metadata.resourceVersion;
  const owned = (o: KubeObject) =>
    JSON.stringify(
      (['labels', 'annotations'] as const).map((field) => Object.keys(wanted.metadata[field] ?? {}).sort().map((key) => [key, o.metadata[field]?.[key]])),
    );
  return generation(old) !== generation(now) || owned(old) !== owned(now);
}

/** Checks everything, then applies `objects` in order; on a failure, deletes what this run created and rethrows. */
export async function install(conn: KubeConnection, objects: KubeObject[], onApplied: (a: Applied) => void): Promise<Applied[]> {
  const { api, context } = conn;
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
  const foreign = await foreignCrds(api, crds);
  const refused = foreign.filter((f) => !f.reusable);
  if (refused.length > 0) {
    throw new CliError(`CRDs Strait needs are already installed by someone else in context ${context}, in a form Strait cannot use; nothing was changed:`, 1, [
      ...refused.map((f) => `- customresourcedefinitions/${f.name} (installed by ${f.owner}) serves ${f.served.join(', ') || 'no version'}, but Strait reads ${f.needed}`),
      'remove it with the tool that installed it (e.g. linkerd smi uninstall), or upgrade that tool to a release that serves the version, then install again',
    ]);
  }
  const reused = new Set(foreign.map((f) => f.name));
  const toApply = objects.filter((o) => !(o.kind === 'CustomResourceDefinition' && reused.has(o.metadata.name)));
  const before = new Map<KubeObject, KubeObject | undefined>();
  for (const o of toApply) before.set(o, await api.get(resourcePath(kindPath(o.kind), o.metadata.name, o.metadata.namespace)));
  // A server-side dry run finds what the API server would refuse before anything is written; objects
  // of a namespace that does not exist yet cannot be dry-run and are checked when applied.
  const nsExists = before.get(toApply.find((o) => o.kind === 'Namespace')!) !== undefined;
  for (const o of toApply) if (!o.metadata.namespace || nsExists) await api.apply(kindPath(o.kind), o, { dryRun: true });

  const results: Applied[] = foreign.map((f) => ({
    object: crds.find((c) => c.metadata.name === f.name)!,
    outcome: 'reused' as const,
    note: `installed by ${f.owner}; it serves ${f.served.join(', ')}, and uninstall leaves it`,
  }));
  results.forEach(onApplied);
  const created: KubeObject[] = [];
  try {
    for (const o of toApply) {
      const old = before.get(o);
      const now = await api.apply(kindPath(o.kind), o);
      if (!old) created.push(o);
      const outcome: ApplyOutcome = !old ? 'created' : changedByApply(o, old, now) ? 'configured' : 'unchanged';
      const applied = { object: o, outcome };
      results.push(applied);
      onApplied(applied);
    }
  } catch (err) {
    for (const o of created.reverse()) await api.delete(resourcePath(kindPath(o.kind), o.metadata.name, o.metadata.namespace)).catch(() => false);
    throw new CliError(`installing into context ${context} failed, and what this run had created was removed: ${(err as Error).message}`);
  }
  return results;
}

/** An object the account may not read is not waited for. */
function ignoreForbidden(err: unknown): undefined {
  if (err instanceof KubeApiError && err.status === 403) return undefined;
  throw err;
}

/** The kinds uninstall looks for by label, cluster-wide; everything else of Strait's lives in strait-system and goes with it. */
const UNINSTALL_KINDS = ['MutatingWebhookConfiguration', 'ConfigMap', 'ClusterRoleBinding', 'ClusterRole', 'Namespace', 'CustomResourceDefinition'];

/** Every object install (or the webhook) made, found by Strait's label, in the order to delete them (the webhook first, CRDs last). */
export async function installedObjects(api: KubeApi): Promise<KubeObject[]> {
  const lists = await Promise.all(
    UNINSTALL_KINDS.map(async (kind) => {
      const items = await api.list(resourcePath(kindPath(kind)), L.PART_OF_SELECTOR);
      // The namespace's own ConfigMaps go with it.
      return items.filter((o) => kind !== 'ConfigMap' || o.metadata.namespace !== L.STRAIT_NAMESPACE).map((o) => ({ ...o, kind }));
    }),
  );
  return lists.flat();
}

export async function uninstall(conn: KubeConnection, onDeleted: (o: KubeObject) => void, options: { waitMs?: number } = {}): Promise<KubeObject[]> {
  const { api, context } = conn;
  const objects = await installedObjects(api);
  const wanted = objects.map((o) => {
    const { group, resource, namespaced } = PLURAL_GROUP(o.kind);
    return { verb: 'delete', group, resource, ...(namespaced && o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) };
  });
  refuseMissing(context, await missingAccess(api, wanted), 'uninstall Strait');
  const remainingGroups = new Set((await api.list<CrdLike & { spec?: { group?: string } }>(resourcePath(kindPath('CustomResourceDefinition')))).filter((c) => !ownedByStrait(c)).map((c) => c.spec?.group));
  for (const o of objects) {
    await api.delete(resourcePath(kindPath(o.kind), o.metadata.name, o.metadata.namespace));
    onDeleted(o);
  }
  // Namespaces and CRDs are finalized in the background, and the API server then drops the
  // APIServices it registered for a CRD's group: wait, so "uninstalled" means gone.
  const deadline = Date.now() + (options.waitMs ?? 120_000);
  const paths = objects.map((o) => ({ o, path: resourcePath(kindPath(o.kind), o.metadata.name, o.metadata.namespace) }));
  for (const crd of objects.filter((o) => o.kind === 'CustomResourceDefinition') as (CrdLike & { spec?: { group?: string } })[]) {
    if (remainingGroups.has(crd.spec?.group)) continue;
    for (const v of crd.spec?.versions ?? []) paths.push({ o: crd, path: `/apis/apiregistration.k8s.io/v1/apiservices/${v.name}.${crd.spec?.group}` });
  }
  for (const { o, path } of paths) {
    while ((await api.get(path).catch(ignoreForbidden)) !== undefined) {
      if (Date.now() > deadline) throw new CliError(`${objectRef(o)} is still being deleted in context ${context}; see why with: kubectl get ${PLURAL_GROUP(o.kind).resource} ${o.metadata.name} -o yaml`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return objects;
}
