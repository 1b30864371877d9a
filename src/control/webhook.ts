// The proxy injector as a Kubernetes mutating admission webhook: AdmissionReview v1 over HTTPS,
// answered with a JSONPatch that adds the proxy sidecar to the pods wantsProxy selects (the same
// switches as the local runtime). The control plane serves it; the API server calls it on every
// pod CREATE outside strait-system and kube-system.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resource } from '../api/types.js';
import { injectProxySidecar, wantsProxy, type ProxySettings } from './injector.js';

export const WEBHOOK_PATH = '/inject';
/** The port the control plane serves the webhook on, and its Service's. */
export const WEBHOOK_PORT = 8443;
const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  operation?: string;
  namespace?: string;
  dryRun?: boolean;
  object?: Resource & { spec?: { containers: { name: string }[] } };
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: { uid: string; allowed: boolean; patchType?: 'JSONPatch'; patch?: string; warnings?: string[]; status?: { code: number; message: string } };
}

export interface JsonPatchOp {
  op: 'add';
  path: string;
  value: unknown;
}

export interface InjectorOptions {
  settings: Omit<ProxySettings, 'trustAnchorsFile'> & { audience: string };
  /** The pod's namespace, for its injection annotation or label. */
  namespace: (name: string) => Promise<Resource | undefined>;
  /** Makes sure the trust-anchor ConfigMap the sidecar mounts exists in `namespace`. */
  ensureTrustAnchors: (namespace: string) => Promise<void>;
  onEvent?: (event: { pod: string; injected: boolean; warning?: string }) => void;
}

/**
 * The patch that turns `pod` into `injected`. "add" of an object member replaces it (RFC 6902), so
 * each changed top-level field is written whole: simpler to check than per-element operations.
 */
export function podPatch(pod: Resource & { spec?: object }, injected: Resource & { spec?: object }): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  if (JSON.stringify(pod.metadata.annotations) !== JSON.stringify(injected.metadata.annotations)) {
    ops.push({ op: 'add', path: '/metadata/annotations', value: injected.metadata.annotations });
  }
  const before = (pod.spec ?? {}) as Record<string, unknown>;
  const after = (injected.spec ?? {}) as Record<string, unknown>;
  for (const key of ['initContainers', 'containers', 'volumes']) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) ops.push({ op: 'add', path: `/spec/${key}`, value: after[key] });
  }
  return ops;
}

/** The answer to one AdmissionReview: always allowed (injection never blocks a pod), with a patch when the pod gets a proxy. */
export async function reviewPod(review: AdmissionReview, options: InjectorOptions): Promise<AdmissionReview> {
  const request = review.request;
  if (!request?.uid) throw new Error('the AdmissionReview has no request.uid');
  const answer = (extra: Partial<NonNullable<AdmissionReview['response']>> = {}): AdmissionReview => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: request.uid, allowed: true, ...extra },
  });
  const pod = request.object;
  if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE' || !pod?.spec) return answer();
  const namespaceName = request.namespace ?? pod.metadata.namespace ?? 'default';
  const podName = `${namespaceName}/${pod.metadata.name || (pod.metadata as { generateName?: string }).generateName || '?'}`;
  let namespace: Resource | undefined;
  try {
    namespace = await options.namespace(namespaceName);
  } catch (err) {
    const warning = `strait: namespace ${namespaceName} could not be read, so the pod was admitted without a proxy: ${(err as Error).message}`;
    options.onEvent?.({ pod: podName, injected: false, warning });
    return answer({ warnings: [warning] });
  }
  if (!wantsProxy(pod, namespace)) {
    options.onEvent?.({ pod: podName, injected: false });
    return answer();
  }
  const warnings: string[] = [];
  try {
    // The webhook declares sideEffects NoneOnDryRun: a dry run writes nothing.
    if (!request.dryRun) await options.ensureTrustAnchors(namespaceName);
  } catch (err) {
    warnings.push(`strait: the trust-anchor ConfigMap could not be written to ${namespaceName}; the pod waits for it: ${(err as Error).message}`);
  }
  const injected = injectProxySidecar(pod as Parameters<typeof injectProxySidecar>[0], options.settings) as Resource & { spec?: object };
  const patch = podPatch(pod, injected);
  options.onEvent?.({ pod: podName, injected: patch.length > 0, ...(warnings[0] ? { warning: warnings[0] } : {}) });
  if (patch.length === 0) return answer(warnings.length ? { warnings } : {});
  return answer({ patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64'), ...(warnings.length ? { warnings } : {}) });
}

function handle(options: InjectorOptions) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const fail = (code: number, message: string) => {
      res.writeHead(code, { 'content-type': 'text/plain' }).end(message + '\n');
    };
    if (req.method === 'GET' && req.url === '/ready') return fail(200, 'ok');
    if (req.method !== 'POST' || req.url?.split('?')[0] !== WEBHOOK_PATH) return fail(404, `POST AdmissionReviews to ${WEBHOOK_PATH}`);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REVIEW_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let review: AdmissionReview;
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview;
      } catch {
        return fail(400, 'the body is not a JSON AdmissionReview');
      }
      reviewPod(review, options).then(
        (answer) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)),
        (err: Error) => fail(400, err.message),
      );
    });
  };
}

/** Serves the injector over HTTPS with the webhook's serving certificate (PEM). Resolves once listening. */
export async function startInjectorWebhook(options: InjectorOptions & { host?: string; port?: number; cert: string; key: string }): Promise<https.Server> {
  const server = https.createServer({ cert: options.cert, key: options.key }, handle(options));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? WEBHOOK_PORT, options.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}
