// The Kubernetes API as the installer, `strait check` and the control plane's webhook and
// TokenReview use it (get, list, server-side apply, delete, create), over the store's one REST
// client, with errors a person can act on: a time-out names the server's address.
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeRest, KubeTransportError } from '../store/kube-rest.js';
// One field manager for every server-side apply, so a second install is a no-op.
import { FIELD_MANAGER } from '../store/kubernetes.js';
import { kindRoute } from '../api/crds.js';
import { UserError } from '../api/errors.js';

export const DEFAULT_KUBE_TIMEOUT_MS = 10_000;

/** A failure talking to the API server; `status` is the HTTP status when the server answered. */
export class KubeApiError extends UserError {
  override name = 'KubeApiError';
  constructor(
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** Where a kind lives in the API: group ('' for core), version, plural, and whether it is namespaced. */
export interface KindPath {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

/** Kinds install and check use that the store does not serve (those are in src/api/crds.ts). */
const INSTALL_KINDS: Record<string, KindPath> = {
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true },
  MutatingWebhookConfiguration: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', namespaced: false },
  CustomResourceDefinition: { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', namespaced: false },
};

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** The URL path of a collection (name undefined) or an object. */
export function resourcePath(kind: KindPath, name?: string, namespace?: string): string {
  const base = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  const ns = kind.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${kind.plural}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

/** Where `kind` is served, throwing on a kind Strait does not know. */
export function kindPath(kind: string): KindPath {
  const path = kindRoute(kind) ?? INSTALL_KINDS[kind];
  if (!path) throw new Error(`no API path known for kind ${kind}`);
  return path;
}

interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string>;
}

export interface KubeResponse<T> {
  status: number;
  body: T;
}

/** The Kubernetes API as install, check, the webhook and TokenReview use it, over the store's KubeRest. */
export class KubeApi {
  readonly server: string;
  readonly context: string;

  constructor(readonly rest: KubeRest) {
    this.server = rest.server.origin + rest.server.pathname.replace(/\/+$/, '');
    this.context = rest.context;
  }

  /** Over a kubeconfig already loaded, at its current context. */
  static async connect(config: KubeConfig, options: { timeoutMs?: number } = {}): Promise<KubeApi> {
    if (!config.getCurrentCluster()) throw new KubeApiError(`kubeconfig context ${config.getCurrentContext()} names no cluster`);
    return new KubeApi(await KubeRest.fromConfig(config, options.timeoutMs ?? DEFAULT_KUBE_TIMEOUT_MS));
  }

  /** Any request; resolves for every HTTP status (the caller decides), rejects when the server does not answer. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<KubeResponse<T>> {
    try {
      return (await this.rest.send(method, path, options)) as KubeResponse<T>;
    } catch (err) {
      if (!(err instanceof KubeTransportError)) throw err;
      if (err.kind === 'timeout') {
        throw new KubeApiError(`the Kubernetes API server at ${this.server} (context ${this.context}) did not answer within ${this.rest.timeoutMs / 1000} s; check that it runs and that the address is right`);
      }
      throw new KubeApiError(`cannot reach the Kubernetes API server at ${this.server} (context ${this.context}): ${err.detail}`);
    }
  }

  /** The body of a 2xx answer; any other status becomes a KubeApiError with the server's message. */
  async call<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request<T>(method, path, options);
    if (res.status >= 200 && res.status < 300) return res.body;
    throw statusError(method, path, res);
  }

  /** The object, or undefined when it does not exist. */
  async get<T = KubeObject>(path: string): Promise<T | undefined> {
    const res = await this.request<T>('GET', path);
    if (res.status === 404) return undefined;
    if (res.status >= 200 && res.status < 300) return res.body;
    throw statusError('GET', path, res);
  }

  async list<T = KubeObject>(path: string, labelSelector?: string): Promise<T[]> {
    const body = await this.call<{ items?: T[] }>('GET', path, labelSelector === undefined ? {} : { query: { labelSelector } });
    return body.items ?? [];
  }

  /** Server-side apply of one object, owned by Strait's field manager; `dryRun` validates without writing. */
  async apply(kind: KindPath, object: KubeObject, options: { dryRun?: boolean } = {}): Promise<KubeObject> {
    const path = resourcePath(kind, object.metadata.name, object.metadata.namespace);
    const query: Record<string, string> = { fieldManager: FIELD_MANAGER, force: 'true' };
    if (options.dryRun) query.dryRun = 'All';
    return this.call<KubeObject>('PATCH', path, { body: object, contentType: 'application/apply-patch+yaml', query });
  }

  /** Deletes an object (children in the background); true when it existed. */
  async delete(path: string): Promise<boolean> {
    const res = await this.request('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' } });
    if (res.status === 404) return false;
    if (res.status >= 200 && res.status < 300) return true;
    throw statusError('DELETE', path, res);
  }

  async create<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, { body });
  }
}

function statusError(method: string, path: string, res: KubeResponse<unknown>): KubeApiError {
  const status = res.body as { message?: string; reason?: string } | string | undefined;
  const message = typeof status === 'object' && status?.message ? status.message : typeof status === 'string' && status !== '' ? status.trim() : `HTTP ${res.status}`;
  return new KubeApiError(`${method} ${path}: ${message}`, res.status, typeof status === 'object' ? status?.reason : undefined);
}
