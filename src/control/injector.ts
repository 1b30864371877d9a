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
}

/** What injection reads and writes of a pod (the platforms' pod types have more). */
interface InjectablePod {
  metadata: ObjectMeta;
  spec?: { containers: { name: string; env?: EnvVar[] }[] };
}

const env = (name: string, value: string): EnvVar => ({ name, value });

/** The pod with a proxy container beside its app, which sends its HTTP through the proxy. */
export function injectProxy<P extends InjectablePod>(pod: P, settings: ProxySettings): P {
  const spec = pod.spec!;
  if (spec.containers.some((c) => c.name === PROXY_CONTAINER)) return pod;
  const proxyUrl = `http://$(POD_IP):${PROXY_PORTS.outbound}`;
  const apps = spec.containers.map(
    (c) => ({
      ...c,
      env: [...(c.env ?? []), env('http_proxy', proxyUrl), env('HTTP_PROXY', proxyUrl), env('no_proxy', 'localhost'), env('NO_PROXY', 'localhost')],
    }),
  );
  const proxy = {
    name: PROXY_CONTAINER,
    image: `${PROXY_IMAGE}:${VERSION}`,
    env: [
      env('STRAIT_CLUSTER', settings.cluster),
      env('STRAIT_CONTROL_PLANE', settings.controlPlane),
      env('STRAIT_TRUST_DOMAIN', settings.trustDomain),
      env('STRAIT_TRUST_ANCHORS', settings.trustAnchorsFile),
      env('STRAIT_CONTROL_PLANE_IDENTITY', controlPlaneSpiffeId(settings.trustDomain)),
      // The platform writes the pod's credential into its working directory (see src/runtime/pods.ts).
      env('STRAIT_IDENTITY_TOKEN_FILE', 'identity-token'),
      env('STRAIT_OUTBOUND', pod.metadata.annotations?.['strait.dev/outbound'] ?? ''),
    ],
    ports: [
      { name: 'outbound', containerPort: PROXY_PORTS.outbound, protocol: 'TCP' },
      { name: 'inbound', containerPort: PROXY_PORTS.inbound, protocol: 'TCP' },
      { name: 'admin', containerPort: PROXY_PORTS.admin, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/ready', port: PROXY_PORTS.admin } },
  };
  return {
    ...pod,
    metadata: { ...pod.metadata, annotations: { ...pod.metadata.annotations, [PROXY_VERSION_ANNOTATION]: VERSION } },
    spec: { ...spec, containers: [...apps, proxy] },
  };
}
