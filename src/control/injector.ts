// Proxy injection: which pods get a proxy, and the proxy container they get — what Linkerd's and
// Istio's injector webhooks do at pod creation. The guides' annotations and labels all work.
import { PROXY_CONTAINER, PROXY_PORTS } from '../api/mesh.js';
import type { ObjectMeta, Resource } from '../api/types.js';
import { VERSION } from '../api/version.js';
import { controlPlaneSpiffeId } from '../identity/spiffe.js';

export const PROXY_IMAGE = 'strait/proxy';
/** Set on injected pods: the proxy's version, which `strait check` compares with the CLI's. */
export const PROXY_VERSION_ANNOTATION = 'strait.dev/proxy-version';

const ENABLED = new Set(['enabled', 'true']);
const DISABLED = new Set(['disabled', 'false']);

/** The pod-level switches, strongest first; a value saying no wins over any saying yes. */
const POD_SWITCHES = ['strait.dev/inject', 'linkerd.io/inject', 'sidecar.istio.io/inject'];

/**
 * Whether a pod gets a proxy: `disabled`/`"false"` on the pod wins; then `enabled`/`"true"` on the
 * pod (annotation, or Istio's label); then the namespace's `linkerd.io/inject` or
 * `strait.dev/inject` annotation, or its `istio-injection` label.
 */
export function wantsProxy(pod: Pick<Resource, 'metadata'>, namespace: Pick<Resource, 'metadata'> | undefined): boolean {
  const podValues = POD_SWITCHES.flatMap((key) => [pod.metadata.annotations?.[key], pod.metadata.labels?.[key]]).filter((v): v is string => v !== undefined);
  if (podValues.some((v) => DISABLED.has(v))) return false;
  if (podValues.some((v) => ENABLED.has(v))) return true;
  const ns = namespace?.metadata;
  if (!ns) return false;
  if (ns.labels?.['istio-injection'] === 'disabled') return false;
  return ns.annotations?.['linkerd.io/inject'] === 'enabled' || ns.annotations?.['strait.dev/inject'] === 'enabled' || ns.labels?.['istio-injection'] === 'enabled';
}

/** What the proxy needs to know of its cluster (the platform fills it in). */
export interface ProxySettings {
  cluster: string;
  /** The control plane's identity and discovery endpoint, `host:port`. */
  controlPlane: string;
  trustDomain: string;
  /** PEM file with the trust anchors. */
  trustAnchorsFile: string;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

interface Container {
  name: string;
  env?: EnvVar[];
}

/** What injection reads and writes of a pod (the platforms' pod types have more). */
interface InjectablePod {
  metadata: ObjectMeta;
  spec?: { containers: Container[]; initContainers?: Container[]; volumes?: unknown[] };
}

const env = (name: string, value: string): EnvVar => ({ name, value });
const field = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const PROXY_URL = `http://$(POD_IP):${PROXY_PORTS.outbound}`;
const PROXY_ENV = [env('http_proxy', PROXY_URL), env('HTTP_PROXY', PROXY_URL), env('no_proxy', 'localhost'), env('NO_PROXY', 'localhost')];

function proxyContainer(pod: InjectablePod, settings: ProxySettings, identityTokenFile: string, extraEnv: EnvVar[] = []) {
  return {
    name: PROXY_CONTAINER,
    image: `${PROXY_IMAGE}:${VERSION}`,
    env: [
      ...extraEnv,
      env('STRAIT_CLUSTER', settings.cluster),
      env('STRAIT_CONTROL_PLANE', settings.controlPlane),
      env('STRAIT_TRUST_DOMAIN', settings.trustDomain),
      env('STRAIT_TRUST_ANCHORS', settings.trustAnchorsFile),
      env('STRAIT_CONTROL_PLANE_IDENTITY', controlPlaneSpiffeId(settings.trustDomain)),
      env('STRAIT_IDENTITY_TOKEN_FILE', identityTokenFile),
      env('STRAIT_OUTBOUND', pod.metadata.annotations?.['strait.dev/outbound'] ?? ''),
    ],
    ports: [
      { name: 'outbound', containerPort: PROXY_PORTS.outbound, protocol: 'TCP' },
      { name: 'inbound', containerPort: PROXY_PORTS.inbound, protocol: 'TCP' },
      { name: 'admin', containerPort: PROXY_PORTS.admin, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/ready', port: PROXY_PORTS.admin } },
  };
}

const versioned = (meta: ObjectMeta): ObjectMeta => ({ ...meta, annotations: { ...meta.annotations, [PROXY_VERSION_ANNOTATION]: VERSION } });

/** The pod with a proxy container beside its app, which sends its HTTP through the proxy. */
export function injectProxy<P extends InjectablePod>(pod: P, settings: ProxySettings): P {
  const spec = pod.spec!;
  if (spec.containers.some((c) => c.name === PROXY_CONTAINER)) return pod;
  const apps = spec.containers.map((c) => ({ ...c, env: [...(c.env ?? []), ...PROXY_ENV] }));
  // The platform writes the pod's credential into its working directory (see src/runtime/pods.ts).
  const proxy = proxyContainer(pod, settings, 'identity-token');
  return { ...pod, metadata: versioned(pod.metadata), spec: { ...spec, containers: [...apps, proxy] } };
}

/** The audience of the projected token the proxy presents to the CA, and where the pod mounts it. */
export const TOKEN_VOLUME = 'strait-identity-token';
export const TOKEN_MOUNT = '/var/run/secrets/strait/identity';
export const TRUST_ANCHORS_VOLUME = 'strait-trust-anchors';
export const TRUST_ANCHORS_MOUNT = '/var/run/secrets/strait/trust-anchors';
/** The ConfigMap with the mesh's trust anchors that the control plane keeps in each injected namespace (as Istio's istio-ca-root-cert). */
export const TRUST_ANCHORS_CONFIGMAP = 'strait-trust-anchors';
export const TRUST_ANCHORS_KEY = 'ca-bundle.crt';
const TOKEN_LIFETIME_S = 24 * 3600;

/** A container's path to a file of a volume: the node agent runs containers in the pod's directory, with mounts under it. */
const relative = (mount: string, file: string) => `${mount.replace(/^\/+/, '')}/${file}`;

/**
 * The pod as the Kubernetes webhook admits it: the proxy as a native sidecar (an init container
 * that keeps running, restartPolicy Always, so it starts before and stops after the app), the
 * ServiceAccount token projected for Strait's audience, the trust anchors from a ConfigMap, the
 * downward-API env the proxy reads, and the apps' http_proxy. `settings.trustAnchorsFile` is unused:
 * the file comes from the ConfigMap volume.
 */
export function injectProxySidecar<P extends InjectablePod>(pod: P, settings: Omit<ProxySettings, 'trustAnchorsFile'> & { audience: string }): P {
  const spec = pod.spec!;
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  if (all.some((c) => c.name === PROXY_CONTAINER)) return pod;
  const podIp = field('POD_IP', 'status.podIP');
  const apps = spec.containers.map((c) => ({ ...c, env: [...(c.env ?? []).filter((e) => e.name !== 'POD_IP'), podIp, ...PROXY_ENV] }));
  const proxy = {
    ...proxyContainer(pod, { ...settings, trustAnchorsFile: relative(TRUST_ANCHORS_MOUNT, TRUST_ANCHORS_KEY) }, relative(TOKEN_MOUNT, 'token'), [
      podIp,
      field('POD_NAME', 'metadata.name'),
      field('POD_NAMESPACE', 'metadata.namespace'),
    ]),
    restartPolicy: 'Always',
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_MOUNT, readOnly: true },
      { name: TRUST_ANCHORS_VOLUME, mountPath: TRUST_ANCHORS_MOUNT, readOnly: true },
    ],
  };
  const volumes = [
    ...(spec.volumes ?? []),
    { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: settings.audience, expirationSeconds: TOKEN_LIFETIME_S, path: 'token' } }] } },
    { name: TRUST_ANCHORS_VOLUME, configMap: { name: TRUST_ANCHORS_CONFIGMAP } },
  ];
  return { ...pod, metadata: versioned(pod.metadata), spec: { ...spec, initContainers: [proxy, ...(spec.initContainers ?? [])], containers: apps, volumes } };
}
