// A small REST client for the Kubernetes API on the credentials of a kubeconfig context: what the
// installer, `strait check` and the control plane's webhook and TokenReview need (get, list,
// server-side apply, delete, create), each with a time-out that names the server's address.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { kindRoute } from '../api/crds.js';
import { UserError } from '../api/errors.js';

export const DEFAULT_KUBE_TIMEOUT_MS = 10_000;
/** The field manager of every server-side apply, so a second install is a no-op. */
export const FIELD_MANAGER = 'strait';

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

export class KubeApi {
  readonly server: string;
  readonly context: string;
  private readonly config: KubeConfig;
  private readonly timeoutMs: number;

  constructor(config: KubeConfig, options: { timeoutMs?: number } = {}) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new KubeApiError(`kubeconfig context ${config.getCurrentContext()} names no cluster`);
    this.config = config;
    this.server = cluster.server.replace(/\/+$/, '');
    this.context = config.getCurrentContext();
    this.timeoutMs = options.timeoutMs ?? DEFAULT_KUBE_TIMEOUT_MS;
  }

  /** Any request; resolves for every HTTP status (the caller decides), rejects when the server does not answer. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<KubeResponse<T>> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.config.applyToHTTPSOptions(opts);
    const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    if (payload !== undefined) Object.assign(opts.headers!, { 'content-type': options.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) });
    const lib = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            // not JSON: kept as text
          }
          resolve({ status: res.statusCode ?? 0, body: body as T });
        });
      });
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(new KubeApiError(`the Kubernetes API server at ${this.server} (context ${this.context}) did not answer within ${this.timeoutMs / 1000} s; check that it runs and that the address is right`));
      });
      req.on('error', (err) => {
        if (err instanceof KubeApiError) reject(err);
        else reject(new KubeApiError(`cannot reach the Kubernetes API server at ${this.server} (context ${this.context}): ${err.message}`));
      });
      req.end(payload);
    });
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
