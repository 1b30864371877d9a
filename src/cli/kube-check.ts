// `strait check --context C [--pre]` on Kubernetes, as `linkerd check`: the API server answers; with
// --pre, that an install can go ahead; otherwise that the CRDs are there, the control plane is
// ready, the injector webhook answers (a server-side dry run of an injected pod goes through the
// API server to it) and with which failure policy, the issuer is valid, and the proxies are ready.
import { PROXY_CONTAINER } from '../api/mesh.js';
import { customResourceDefinitions } from '../api/crds.js';
import { KubeApiError, kindPath, resourcePath, type KubeApi, type KubeObject } from '../control/kube-api.js';
import * as L from '../control/kube-layout.js';
import { TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY } from '../control/injector.js';
import { chainProblem } from './check.js';
import { identityChecks, type CheckResult } from './check-rules.js';
import { installShape } from './install-manifests.js';
import { accessText, foreignCrds, installAccess, missingAccess } from './kube-install.js';
import type { KubeConnection } from './kube-context.js';

export const KUBE_SECTIONS = {
  api: 'kubernetes-api',
  version: 'kubernetes-version',
  pre: 'pre-kubernetes-setup',
  config: 'strait-config',
  controlPlane: 'strait-control-plane',
  injector: 'strait-injector',
  identity: 'strait-identity',
  dataPlane: 'strait-data-plane',
} as const;

/** The first release that runs native sidecars (init containers with restartPolicy Always) by default. */
const NATIVE_SIDECAR_MINOR = 29;

const pass = (section: string, name: string, details: string[] = []): CheckResult => ({ section, name, ok: true, details, hints: [] });
const fail = (section: string, name: string, details: string[], hints: string[]): CheckResult => ({ section, name, ok: false, details, hints });

/** The check that the API server answered: run before anything else (kubeConnection throws otherwise). */
export function apiChecks(conn: KubeConnection): CheckResult[] {
  const results = [pass(KUBE_SECTIONS.api, 'can reach the Kubernetes API server', [`${conn.api.server} (context ${conn.context})`])];
  const minor = Number(/^v1\.(\d+)/.exec(conn.version)?.[1] ?? 0);
  results.push(
    minor >= NATIVE_SIDECAR_MINOR
      ? pass(KUBE_SECTIONS.version, 'the API server runs native sidecars', [conn.version])
      : fail(KUBE_SECTIONS.version, 'the API server runs native sidecars', [`the API server is ${conn.version}; the proxy is injected as a native sidecar, which needs v1.${NATIVE_SIDECAR_MINOR} or newer`], ['upgrade the cluster']),
  );
  return results;
}

async function preChecks(api: KubeApi, context: string): Promise<CheckResult[]> {
  const section = KUBE_SECTIONS.pre;
  const objects = installShape();
  const [missing, foreign, ns] = await Promise.all([
    missingAccess(api, installAccess(objects)),
    foreignCrds(api, objects.filter((o) => o.kind === 'CustomResourceDefinition')).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.status === 403) return err;
      throw err;
    }),
    api.get(resourcePath(kindPath('Namespace'), L.STRAIT_NAMESPACE)),
  ]);
  const results = [
    missing.length === 0
      ? pass(section, 'can create the objects of an install', [`context ${context}`])
      : fail(section, 'can create the objects of an install', missing.map((a) => `the account of context ${context} may not ${accessText(a)}`), ['use a context with these permissions (cluster-admin has them), or ask an administrator to grant them']),
  ];
  const crdCheck = "CRDs installed by other tools can be reused";
  if (foreign instanceof Error) {
    results.push(fail(section, crdCheck, [`the account of context ${context} may not read CRDs: ${foreign.message}`], ['use a context that may get customresourcedefinitions']));
    return [...results, nsCheck(ns, context)];
  }
  const refused = foreign.filter((f) => !f.reusable);
  results.push(
    refused.length === 0
      ? pass(section, crdCheck, foreign.map((f) => `customresourcedefinitions/${f.name} (installed by ${f.owner}) serves ${f.needed}: reused, and left by uninstall`))
      : fail(section, crdCheck, refused.map((f) => `customresourcedefinitions/${f.name} (installed by ${f.owner}) serves ${f.served.join(', ')}, but Strait reads ${f.needed}`), ['remove it with the tool that installed it (e.g. linkerd smi uninstall), or upgrade that tool']),
  );
  return [...results, nsCheck(ns, context)];
}

function nsCheck(ns: KubeObject | undefined, context: string): CheckResult {
  const name = `namespace ${L.STRAIT_NAMESPACE} does not exist yet`;
  if (ns === undefined) return pass(KUBE_SECTIONS.pre, name);
  const installed = (ns.metadata.labels ?? {})[L.PART_OF_LABEL] === L.PART_OF ? ': Strait is installed' : '';
  return fail(KUBE_SECTIONS.pre, name, [`namespace ${L.STRAIT_NAMESPACE} exists already${installed}`], [`check the installation with: strait check --context ${context}`]);
}

interface Deployment extends KubeObject {
  spec?: { replicas?: number };
  status?: { readyReplicas?: number; conditions?: { type: string; status: string; message?: string }[] };
}

function deploymentCheck(section: string, name: string, deploy: Deployment | undefined, context: string): CheckResult {
  const what = `${name} is ready`;
  const hint = `see why: kubectl --context ${context} -n ${L.STRAIT_NAMESPACE} describe deployment ${name}`;
  if (!deploy) return fail(section, what, [`deployment ${L.STRAIT_NAMESPACE}/${name} does not exist`], [`install Strait: strait install --context ${context}`]);
  const ready = deploy.status?.readyReplicas ?? 0;
  if (ready < 1) {
    const stuck = deploy.status?.conditions?.find((c) => c.status !== 'True' && c.message)?.message;
    return fail(section, what, [`deployment ${L.STRAIT_NAMESPACE}/${name} has no ready replica (of ${deploy.spec?.replicas ?? 1})${stuck ? `: ${stuck}` : ''}`], [hint]);
  }
  return pass(section, what, [`${ready} of ${deploy.spec?.replicas ?? 1} replicas ready`]);
}

/** The gateway runs in the control plane's process: its Service must lead to the control plane's pods. */
function gatewayCheck(service: (KubeObject & { spec?: { type?: string; selector?: Record<string, string> } }) | undefined, controlPlane: Deployment | undefined, context: string): CheckResult {
  const what = `${L.GATEWAY} is ready`;
  if (!service) return fail(KUBE_SECTIONS.controlPlane, what, [`service ${L.STRAIT_NAMESPACE}/${L.GATEWAY} does not exist`], [`install Strait: strait install --context ${context}`]);
  if (service.spec?.selector?.[L.COMPONENT_LABEL] !== 'control-plane') {
    return fail(KUBE_SECTIONS.controlPlane, what, [`service ${L.STRAIT_NAMESPACE}/${L.GATEWAY} does not select the control plane, where the gateway runs`], [`install Strait again: strait install --context ${context}`]);
  }
  if ((controlPlane?.status?.readyReplicas ?? 0) < 1) return fail(KUBE_SECTIONS.controlPlane, what, ['the control plane, where the gateway runs, has no ready replica'], [`see why: kubectl --context ${context} -n ${L.STRAIT_NAMESPACE} describe deployment ${L.CONTROL_PLANE}`]);
  return pass(KUBE_SECTIONS.controlPlane, what, [`service type ${service.spec.type ?? 'ClusterIP'}, in the control plane's pods`]);
}

interface WebhookConfig extends KubeObject {
  webhooks?: { name: string; failurePolicy?: string; clientConfig?: { caBundle?: string } }[];
}

interface PodObject extends KubeObject {
  spec?: { initContainers?: { name: string }[]; containers?: { name: string }[] };
  status?: { phase?: string; initContainerStatuses?: { name: string; ready?: boolean; state?: Record<string, { reason?: string }> }[] };
}

/** Whether the API server, creating a pod that asks for a proxy, gets one from the webhook (a dry run: nothing is stored). */
async function webhookAnswers(api: KubeApi): Promise<{ injected: boolean; warnings: string[] } | Error> {
  const probe = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'strait-check-', annotations: { 'strait.dev/inject': 'enabled' } },
    spec: { containers: [{ name: 'probe', image: 'strait/check' }] },
  };
  try {
    const res = await api.request<PodObject>('POST', resourcePath(kindPath('Pod'), undefined, 'default'), { body: probe, query: { dryRun: 'All' } });
    if (res.status >= 300) return new Error(`the dry-run pod was refused: ${(res.body as unknown as { message?: string })?.message ?? `HTTP ${res.status}`}`);
    return { injected: res.body.spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER) ?? false, warnings: [] };
  } catch (err) {
    return err as Error;
  }
}

async function injectorChecks(api: KubeApi, context: string, tlsCert: string | undefined): Promise<CheckResult[]> {
  const section = KUBE_SECTIONS.injector;
  const config = await api.get<WebhookConfig>(resourcePath(kindPath('MutatingWebhookConfiguration'), L.WEBHOOK_CONFIG));
  const hook = config?.webhooks?.find((w) => w.name === L.WEBHOOK_NAME);
  if (!hook) return [fail(section, 'the proxy injector webhook is configured', [`mutatingwebhookconfiguration ${L.WEBHOOK_CONFIG} ${config ? `has no webhook ${L.WEBHOOK_NAME}` : 'does not exist'}`], [`install Strait: strait install --context ${context}`])];
  const policy = hook.failurePolicy ?? 'Fail';
  const results = [pass(section, 'the proxy injector webhook is configured', [`${L.WEBHOOK_CONFIG}, failurePolicy ${policy}`])];
  const bundle = hook.clientConfig?.caBundle ? Buffer.from(hook.clientConfig.caBundle, 'base64').toString('utf8') : undefined;
  results.push(
    bundle !== undefined && bundle === tlsCert
      ? pass(section, "the webhook's caBundle matches its serving certificate")
      : fail(section, "the webhook's caBundle matches its serving certificate", [`the caBundle of ${L.WEBHOOK_CONFIG} is not the certificate in secret ${L.STRAIT_NAMESPACE}/${L.WEBHOOK_TLS_SECRET}`], [`install again to put them back in step: strait install --context ${context}`]),
  );
  const answer = await webhookAnswers(api);
  const consequence =
    policy === 'Ignore'
      ? 'with failurePolicy Ignore, pods created now start without a proxy; restart them once the control plane is ready'
      : 'with failurePolicy Fail, no pod can be created outside strait-system and kube-system until it answers';
  if (answer instanceof Error || !answer.injected) {
    results.push(
      fail(section, 'the proxy injector webhook answers', [`a dry-run pod asking for a proxy ${answer instanceof Error ? `failed: ${answer.message}` : 'came back without one: the API server could not call the webhook'}`], [consequence, `see why: kubectl --context ${context} -n ${L.STRAIT_NAMESPACE} logs deploy/${L.CONTROL_PLANE}`]),
    );
  } else {
    results.push(pass(section, 'the proxy injector webhook answers', ['a dry-run pod asking for a proxy got one']));
  }
  return results;
}

async function identityFacts(api: KubeApi) {
  const ns = L.STRAIT_NAMESPACE;
  const [secret, anchors] = await Promise.all([
    api.get<KubeObject & { data?: Record<string, string> }>(resourcePath(kindPath('Secret'), L.ISSUER_SECRET, ns)),
    api.get<KubeObject & { data?: Record<string, string> }>(resourcePath(kindPath('ConfigMap'), TRUST_ANCHORS_CONFIGMAP, ns)),
  ]);
  const { parseCertificates, PkiError } = await import('../identity/pem.js');
  const crt = secret?.data?.['tls.crt'];
  const bundle = anchors?.data?.[TRUST_ANCHORS_KEY];
  if (!crt) return new Error(`secret ${ns}/${L.ISSUER_SECRET} holds no tls.crt`);
  if (!bundle) return new Error(`configmap ${ns}/${TRUST_ANCHORS_CONFIGMAP} holds no ${TRUST_ANCHORS_KEY}`);
  try {
    const issuing = parseCertificates(Buffer.from(crt, 'base64').toString('utf8'), `secret ${ns}/${L.ISSUER_SECRET}`);
    const trust = parseCertificates(bundle, `configmap ${ns}/${TRUST_ANCHORS_CONFIGMAP}`);
    const facts = (c: (typeof trust)[number]) => ({ subject: c.subject, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() });
    return { anchors: trust.map(facts), issuer: facts(issuing[0]!), chainProblem: await chainProblem(issuing, trust) };
  } catch (err) {
    if (err instanceof PkiError) return err;
    throw err;
  }
}

/** Every injected pod's proxy sidecar is ready. */
export function proxyChecks(pods: PodObject[], context: string): CheckResult {
  const section = KUBE_SECTIONS.dataPlane;
  const meshed = pods.filter((p) => p.spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER) && p.status?.phase !== 'Succeeded');
  const problems: string[] = [];
  const hints = new Set<string>();
  for (const pod of meshed) {
    const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const status = pod.status?.initContainerStatuses?.find((c) => c.name === PROXY_CONTAINER);
    if (status?.ready) continue;
    const reason = Object.values(status?.state ?? {})[0]?.reason;
    problems.push(`pod ${ref}: its proxy is not ready (${pod.status?.phase ?? 'Pending'}${reason ? `, ${reason}` : ''})`);
    hints.add(`see why: kubectl --context ${context} -n ${pod.metadata.namespace} logs ${pod.metadata.name} -c ${PROXY_CONTAINER}`);
  }
  const name = 'data plane proxies are ready';
  if (problems.length) return fail(section, name, problems, [...hints]);
  return pass(section, name, [meshed.length === 0 ? 'no meshed pods' : `${meshed.length} meshed pod${meshed.length === 1 ? '' : 's'}`]);
}

async function installedChecks(api: KubeApi, context: string): Promise<CheckResult[]> {
  const crds = customResourceDefinitions();
  const found = await Promise.all(crds.map((c) => api.get(resourcePath(kindPath('CustomResourceDefinition'), c.metadata.name))));
  const missing = crds.filter((_, i) => found[i] === undefined).map((c) => c.metadata.name);
  const results = [
    missing.length === 0
      ? pass(KUBE_SECTIONS.config, 'CRDs are installed', [`${crds.length} CRDs`])
      : fail(KUBE_SECTIONS.config, 'CRDs are installed', missing.map((n) => `customresourcedefinitions/${n} does not exist`), [`install Strait: strait install --context ${context}`]),
  ];
  const ns = L.STRAIT_NAMESPACE;
  const [cp, gw, tls] = await Promise.all([
    api.get<Deployment>(resourcePath(kindPath('Deployment'), L.CONTROL_PLANE, ns)),
    api.get<KubeObject & { spec?: { type?: string; selector?: Record<string, string> } }>(resourcePath(kindPath('Service'), L.GATEWAY, ns)),
    api.get<KubeObject & { data?: Record<string, string> }>(resourcePath(kindPath('Secret'), L.WEBHOOK_TLS_SECRET, ns)),
  ]);
  results.push(deploymentCheck(KUBE_SECTIONS.controlPlane, L.CONTROL_PLANE, cp, context), gatewayCheck(gw, cp, context));
  const tlsCert = tls?.data?.['tls.crt'] ? Buffer.from(tls.data['tls.crt'], 'base64').toString('utf8') : undefined;
  results.push(...(await injectorChecks(api, context, tlsCert)));
  results.push(...identityChecks(context, await identityFacts(api), new Date(), `strait install --context ${context} --trust-anchor ca.crt --issuer-cert issuer.crt --issuer-key issuer.key`).map((r) => ({ ...r, section: KUBE_SECTIONS.identity })));
  results.push(proxyChecks(await api.list<PodObject>(resourcePath(kindPath('Pod'))), context));
  return results;
}

export async function kubeChecks(conn: KubeConnection, pre: boolean): Promise<CheckResult[]> {
  const results = apiChecks(conn);
  return [...results, ...(pre ? await preChecks(conn.api, conn.context) : await installedChecks(conn.api, conn.context))];
}
