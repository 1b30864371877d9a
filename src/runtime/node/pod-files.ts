// What the kubelet prepares before a pod's containers start, done for processes: volumes written as
// files, and env drawn from Secrets and ConfigMaps. A process has no mount namespace of its own, so
// each volumeMount's mountPath is a path under the pod's directory (its containers' working
// directory), with the leading `/` dropped: `/var/run/secrets/x` is `./var/run/secrets/x`.
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { Container, EnvVar, Pod } from '../pod-types.js';
import type { KubeRest } from '../../store/kube-rest.js';

/** A Kubernetes pod as the API serves it: the runtime's pod shape and the fields only the node agent reads. */
export interface KubePod extends Pod {
  metadata: Pod['metadata'] & { deletionTimestamp?: string };
  spec: Pod['spec'] & {
    initContainers?: (KubeContainer & { restartPolicy?: string })[];
    containers: KubeContainer[];
    volumes?: Volume[];
    serviceAccountName?: string;
  };
}

interface KeyRef {
  name: string;
  key: string;
  optional?: boolean;
}

export interface KubeContainer extends Omit<Container, 'env'> {
  env?: (EnvVar & { valueFrom?: { secretKeyRef?: KeyRef; configMapKeyRef?: KeyRef } })[];
  envFrom?: { prefix?: string; configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
}

interface KeyToPath {
  key: string;
  path: string;
}

interface TokenSource {
  audience?: string;
  expirationSeconds?: number;
  path: string;
}

interface DownwardSource {
  items?: { path: string; fieldRef?: { fieldPath: string } }[];
}

interface Projection {
  serviceAccountToken?: TokenSource;
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  secret?: { name: string; items?: KeyToPath[]; optional?: boolean };
  downwardAPI?: DownwardSource;
}

interface Volume {
  name: string;
  emptyDir?: object;
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  secret?: { secretName: string; items?: KeyToPath[]; optional?: boolean };
  projected?: { sources: Projection[] };
  downwardAPI?: DownwardSource;
}

/** A pod that cannot be prepared yet (a Secret missing, say): Kubernetes' CreateContainerConfigError. */
export class PodConfigError extends Error {
  override name = 'PodConfigError';
}

/** A token in one of the pod's volumes, to be requested again before it expires. */
export interface ProjectedToken {
  file: string;
  audience: string | undefined;
  expirationSeconds: number;
  /** When it should be renewed: at 80 % of its life, as the kubelet does. */
  renewAt: number;
}

interface DataObject {
  data?: Record<string, string>;
}

/** Reads the Secrets and ConfigMaps of one namespace once each while a pod is prepared. */
class Sources {
  private readonly cache = new Map<string, Promise<Record<string, string> | undefined>>();

  constructor(
    private readonly api: KubeRest,
    private readonly namespace: string,
  ) {}

  /** The object's data, decoded (Secrets are base64); undefined when it does not exist. */
  data(kind: 'secrets' | 'configmaps', name: string): Promise<Record<string, string> | undefined> {
    const key = `${kind}/${name}`;
    let found = this.cache.get(key);
    if (!found) {
      found = this.api
        .requestOrMissing<DataObject>('GET', `/api/v1/namespaces/${this.namespace}/${kind}/${name}`)
        .then((o) => (o === undefined ? undefined : kind === 'secrets' ? Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : (o.data ?? {})));
      this.cache.set(key, found);
    }
    return found;
  }

  async required(kind: 'secrets' | 'configmaps', name: string, optional: boolean | undefined): Promise<Record<string, string>> {
    const data = await this.data(kind, name);
    if (data === undefined && !optional) throw new PodConfigError(`${kind === 'secrets' ? 'secret' : 'configmap'} "${name}" not found`);
    return data ?? {};
  }
}

function writeAtomic(file: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', content, { mode });
  renameSync(file + '.tmp', file);
}

function pick(data: Record<string, string>, items: KeyToPath[] | undefined, what: string): [string, string][] {
  if (!items) return Object.entries(data);
  return items.map((i) => {
    if (!(i.key in data)) throw new PodConfigError(`${what} has no key "${i.key}"`);
    return [i.path, data[i.key]!];
  });
}

function downwardValue(pod: KubePod, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)(?:\['([^']*)'\])?$/.exec(fieldPath);
  if (m) {
    const map = (m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations) ?? {};
    if (m[2] !== undefined) return map[m[2]] ?? '';
    return Object.entries(map)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join('\n');
  }
  if (fieldPath === 'metadata.name') return pod.metadata.name;
  if (fieldPath === 'metadata.namespace') return pod.metadata.namespace ?? 'default';
  if (fieldPath === 'metadata.uid') return pod.metadata.uid ?? '';
  throw new PodConfigError(`downwardAPI fieldRef "${fieldPath}" is not supported`);
}

export class PodFiles {
  constructor(
    private readonly api: KubeRest,
    /** The pod's directory: its containers' working directory. */
    readonly dir: string,
  ) {}

  /** Writes every volume of the pod and links each mount to it; returns the tokens to renew. */
  async prepare(pod: KubePod): Promise<ProjectedToken[]> {
    const sources = new Sources(this.api, pod.metadata.namespace ?? 'default');
    const tokens: ProjectedToken[] = [];
    for (const volume of pod.spec.volumes ?? []) {
      const root = this.volumeDir(volume.name);
      mkdirSync(root, { recursive: true });
      const write = (path: string, content: string, mode?: number) => writeAtomic(join(root, path), content, mode);
      if (volume.configMap) {
        for (const [p, v] of pick(await sources.required('configmaps', volume.configMap.name, volume.configMap.optional), volume.configMap.items, `configmap "${volume.configMap.name}"`)) write(p, v);
      } else if (volume.secret) {
        for (const [p, v] of pick(await sources.required('secrets', volume.secret.secretName, volume.secret.optional), volume.secret.items, `secret "${volume.secret.secretName}"`)) write(p, v, 0o600);
      } else if (volume.downwardAPI) {
        for (const item of volume.downwardAPI.items ?? []) write(item.path, downwardValue(pod, item.fieldRef?.fieldPath ?? ''));
      } else if (volume.projected) {
        for (const source of volume.projected.sources) {
          if (source.serviceAccountToken) {
            const token = await this.requestToken(pod, source.serviceAccountToken);
            write(source.serviceAccountToken.path, token.token, 0o600);
            tokens.push({ file: join(root, source.serviceAccountToken.path), audience: source.serviceAccountToken.audience, expirationSeconds: source.serviceAccountToken.expirationSeconds ?? 3600, renewAt: token.renewAt });
          } else if (source.configMap) {
            for (const [p, v] of pick(await sources.required('configmaps', source.configMap.name, source.configMap.optional), source.configMap.items, `configmap "${source.configMap.name}"`)) write(p, v);
          } else if (source.secret) {
            for (const [p, v] of pick(await sources.required('secrets', source.secret.name, source.secret.optional), source.secret.items, `secret "${source.secret.name}"`)) write(p, v, 0o600);
          } else if (source.downwardAPI) {
            for (const item of source.downwardAPI.items ?? []) write(item.path, downwardValue(pod, item.fieldRef?.fieldPath ?? ''));
          }
        }
      } else if (!volume.emptyDir) {
        const type = Object.keys(volume).find((k) => k !== 'name') ?? 'unknown';
        throw new PodConfigError(`volume "${volume.name}": ${type} volumes are not supported by the node agent; configMap, secret, projected, downwardAPI and emptyDir are`);
      }
    }
    for (const container of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
      for (const mount of container.volumeMounts ?? []) this.mount(mount);
    }
    return tokens;
  }

  /** Requests the token again and rewrites its file; returns when to renew it next. */
  async renew(pod: KubePod, token: ProjectedToken): Promise<number> {
    const fresh = await this.requestToken(pod, { audience: token.audience, expirationSeconds: token.expirationSeconds, path: '' });
    writeAtomic(token.file, fresh.token, 0o600);
    return fresh.renewAt;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The env of each container with Secret and ConfigMap values filled in (fieldRefs stay for the runtime). */
  async resolveEnv(pod: KubePod, containers: KubeContainer[]): Promise<Container[]> {
    const sources = new Sources(this.api, pod.metadata.namespace ?? 'default');
    const out: Container[] = [];
    for (const c of containers) {
      const env: EnvVar[] = [];
      for (const from of c.envFrom ?? []) {
        const ref = from.configMapRef ?? from.secretRef;
        if (!ref) continue;
        const data = await sources.required(from.configMapRef ? 'configmaps' : 'secrets', ref.name, ref.optional);
        for (const [k, v] of Object.entries(data)) env.push({ name: `${from.prefix ?? ''}${k}`, value: v });
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
        if (!ref) {
          env.push(e);
          continue;
        }
        const kind = e.valueFrom?.secretKeyRef ? 'secrets' : 'configmaps';
        const data = await sources.required(kind, ref.name, ref.optional);
        if (!(ref.key in data) && !ref.optional) throw new PodConfigError(`env ${e.name}: ${kind === 'secrets' ? 'secret' : 'configmap'} "${ref.name}" has no key "${ref.key}"`);
        if (ref.key in data) env.push({ name: e.name, value: data[ref.key] });
      }
      const { envFrom: _envFrom, volumeMounts: _mounts, ...rest } = c;
      out.push({ ...rest, env });
    }
    return out;
  }

  private volumeDir(name: string): string {
    return join(this.dir, '.volumes', name);
  }

  private mount(mount: { name: string; mountPath: string; subPath?: string }): void {
    const at = join(this.dir, mount.mountPath.replace(/^\/+/, ''));
    if (!at.startsWith(this.dir + '/')) throw new PodConfigError(`volumeMount "${mount.name}": mountPath "${mount.mountPath}" leaves the pod`);
    const target = join(this.volumeDir(mount.name), mount.subPath ?? '');
    mkdirSync(dirname(at), { recursive: true });
    rmSync(at, { recursive: true, force: true });
    symlinkSync(relative(dirname(at), target), at);
  }

  private async requestToken(pod: KubePod, source: TokenSource): Promise<{ token: string; renewAt: number }> {
    const ns = pod.metadata.namespace ?? 'default';
    const sa = pod.spec.serviceAccountName ?? 'default';
    const expirationSeconds = source.expirationSeconds ?? 3600;
    const answer = await this.api.request<{ status: { token: string; expirationTimestamp: string } }>('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(source.audience ? { audiences: [source.audience] } : {}),
          expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
        },
      },
    });
    const expires = Date.parse(answer.status.expirationTimestamp);
    const issued = Date.now();
    return { token: answer.status.token, renewAt: issued + 0.8 * (expires - issued) };
  }
}
