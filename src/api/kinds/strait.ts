// Strait's own kinds (strait.dev) and the names multi-cluster parts agree on: which Services a
// cluster exports, how the mirrors of another cluster's services are labelled, and the annotations
// that tell discovery to reach a mirror's endpoints through a gateway.
import { isIP } from 'node:net';
import { z } from 'zod';
import { matchesSelector } from '../labels.js';
import { dns1123LabelError } from '../names.js';
import { parseDuration } from '../quantity.js';
import type { LabelSelector, Resource } from '../types.js';
import { checkLabelSelector, checkMinimum, defineKind, Integer, LabelSelectorSchema, objectSchema, type Report } from './define.js';

/** Where Links (and the credentials they use) live, as Linkerd keeps them in linkerd-multicluster. */
export const MULTICLUSTER_NAMESPACE = 'strait-system';

/** Either label set to "true" exports a Service to linked clusters (Linkerd's, or Strait's own). */
export const EXPORT_LABELS = ['mirror.linkerd.io/exported', 'strait.dev/export'] as const;

/** Labels on every object the link controller writes, as Linkerd's service mirror labels its mirrors. */
export const MIRROR_LABELS = {
  /** "true" on a mirror Service: it is another cluster's, and is never exported again. */
  mirroredService: 'mirror.linkerd.io/mirrored-service',
  /** The cluster a mirror (or its EndpointSlice) came from. */
  clusterName: 'mirror.linkerd.io/cluster-name',
  /** On a per-instance mirror (`web-0-cluster1`): the mirror of the headless service it belongs to. */
  headlessMirror: 'mirror.linkerd.io/headless-mirror-svc-name',
  /** On a mirror's EndpointSlices: the cluster their endpoints live in. */
  remoteCluster: 'strait.dev/remote-cluster',
} as const;

/** `endpointslice.kubernetes.io/managed-by` of the slices the link controller writes. */
export const LINK_CONTROLLER_NAME = 'strait-link-controller';

export const MIRROR_ANNOTATIONS = {
  /** The remote service a mirror stands for, fully qualified (Linkerd's annotation). */
  remoteService: 'mirror.linkerd.io/remote-svc-fq-name',
  /** The remote service as `namespace/name`: which export an object of the link controller belongs to. */
  remoteRef: 'strait.dev/remote-service',
  /** On a mirror's EndpointSlice: `host:port` of the gateway every endpoint is reached through. */
  gateway: 'strait.dev/gateway',
  /** On a mirror's EndpointSlice: JSON `{"<address>": {"identity": "spiffe://…", "sni": "<route key>"}}`. */
  endpointIdentities: 'strait.dev/endpoint-identities',
  /** On a global or clusterset member's EndpointSlice: the remote service's definition, JSON (RemoteServiceSpec). */
  remoteServiceSpec: 'strait.dev/remote-service-spec',
} as const;

/** A remote service's definition, as its member slices carry it: what conflicts are judged by. */
export interface RemoteServiceSpec {
  /** Service ports (not the endpoints' target ports); `name` is '' for an unnamed port. */
  ports: { name: string; port: number; appProtocol: string }[];
  headless: boolean;
  /** RFC 3339: when this definition was made; of conflicting ones the oldest wins. */
  created: string;
  /** One service with its namesakes (global annotation or namespace sameness). */
  global: boolean;
  /** Named by a ServiceExport. */
  serviceExport: boolean;
}

/** The remote-service-spec annotation of a slice; undefined when it is absent or not that JSON. */
export function parseRemoteServiceSpec(text: string | undefined): RemoteServiceSpec | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<RemoteServiceSpec> | null;
    if (typeof value !== 'object' || value === null || !Array.isArray(value.ports)) return undefined;
    const ports = value.ports.filter((p): p is RemoteServiceSpec['ports'][number] => typeof p?.port === 'number' && typeof p.name === 'string' && typeof p.appProtocol === 'string');
    return { ports, headless: value.headless === true, created: typeof value.created === 'string' ? value.created : '', global: value.global === true, serviceExport: value.serviceExport === true };
  } catch {
    return undefined;
  }
}

/** How a slice endpoint is reached through a gateway: the workload's identity and the SNI route key. */
export interface RemoteEndpointIdentity {
  identity: string;
  sni: string;
}

/** True for an object the link controller wrote (a mirror); such a Service is never exported. */
export function isMirror(object: Resource): boolean {
  const labels = object.metadata.labels ?? {};
  return labels[MIRROR_LABELS.mirroredService] === 'true' || MIRROR_LABELS.remoteCluster in labels;
}

/**
 * True when a Service is exported: it matches `selector`, or, without one, carries an export label
 * set to "true". A mirror is never exported, so links both ways cannot loop.
 */
export function isExported(service: Resource, selector?: LabelSelector): boolean {
  if (isMirror(service)) return false;
  if (selector) return matchesSelector(service.metadata.labels, selector);
  return EXPORT_LABELS.some((label) => service.metadata.labels?.[label] === 'true');
}

/** The identities annotation of a slice, by address; undefined when it is absent or not that JSON. */
export function parseEndpointIdentities(text: string | undefined): Record<string, RemoteEndpointIdentity> | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    const out: Record<string, RemoteEndpointIdentity> = {};
    for (const [address, value] of Object.entries(parsed as Record<string, unknown>)) {
      const { identity, sni } = (value ?? {}) as Partial<RemoteEndpointIdentity>;
      if (typeof identity === 'string' && typeof sni === 'string') out[address] = { identity, sni };
    }
    return out;
  } catch {
    return undefined;
  }
}

/** `host:port` split, or undefined when it is not one (an IPv6 host is written in brackets). */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) return undefined;
  return { host, port };
}

const Duration = z.string();

const ProbeSpecSchema = z.object({
  /** How often the gateway is probed: a Go duration. */
  period: Duration.default('3s'),
  /** Consecutive failed probes after which the gateway counts as down and its endpoints are taken out. */
  failureThreshold: Integer.default(3),
  /** How long one probe may take. */
  timeout: Duration.default('1s'),
});

const LinkSpecSchema = z.object({
  /** The cluster whose exports this link mirrors; the Link is named after it. */
  targetClusterName: z.string().min(1, { error: 'must not be empty' }),
  /** The target's id (from its mesh API) when the link was made: a different cluster of the same name is refused. */
  targetClusterId: z.string().optional(),
  /** `host:port` of the target cluster's gateway, as reachable from here. */
  gatewayAddress: z.string().min(1, { error: 'must not be empty' }),
  /** The Secret (in this namespace) whose `token` is the link credential the target minted. */
  credentialsSecret: z.string().min(1, { error: 'must not be empty' }),
  probeSpec: ProbeSpecSchema.prefault({}),
  /** Which of the target's exported services to mirror; default: those labelled as exported. */
  selector: LabelSelectorSchema.optional(),
  /** SHA-256 fingerprint of the trust anchor both clusters share (`AB:CD:…`). */
  trustAnchorFingerprint: z.string().optional(),
  /**
   * Namespace sameness over this link: every service of the target merges with this cluster's of
   * the same name and namespace. Unset: the mesh's setting (`strait up --sameness`).
   */
  sameness: z.boolean().optional(),
});

export type LinkSpec = z.output<typeof LinkSpecSchema>;
export type ProbeSpec = z.output<typeof ProbeSpecSchema>;

export interface LinkCondition {
  /** `Synced`: the target's exports are mirrored; `GatewayAlive`: the target's gateway answers its probes. */
  type: 'Synced' | 'GatewayAlive';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface GatewayStatus {
  /** Undefined until the first probe answers or fails. */
  alive?: boolean;
  /** Over recent successful probes. */
  latencyMs?: { p50: number; p95: number; p99: number };
  lastProbeTime?: string;
  consecutiveFailures: number;
  lastError?: string;
}

/** Written by the link controller. */
export interface LinkStatus {
  conditions: LinkCondition[];
  /** The target's id, from its mesh API. */
  clusterId?: string;
  /** The Strait version the target runs. */
  remoteVersion?: string;
  /** When the latest change from the target was mirrored. */
  lastSync?: string;
  /** How many of the target's services are mirrored here. */
  services: number;
  gateway: GatewayStatus;
}

export type Link = Resource<LinkSpec, LinkStatus>;

/** A probe spec in milliseconds. */
export function probeTiming(spec: ProbeSpec): { periodMs: number; timeoutMs: number; failureThreshold: number } {
  return { periodMs: parseDuration(spec.period) ?? 3000, timeoutMs: parseDuration(spec.timeout) ?? 1000, failureThreshold: spec.failureThreshold };
}

export const linkKind = defineKind({
  group: 'strait.dev',
  kind: 'Link',
  plural: 'links',
  shortNames: [],
  namespaced: true,
  versions: ['v1alpha1'],
  nameRule: 'dns1123-label',
  schema: objectSchema({ spec: LinkSpecSchema }),
  check: (link, report) => checkLinkSpec(link.metadata.name, link.spec, report),
});

function checkLinkSpec(name: string, spec: LinkSpec, report: Report): void {
  const target = dns1123LabelError(spec.targetClusterName);
  if (target) report(['spec', 'targetClusterName'], `${JSON.stringify(spec.targetClusterName)} ${target}`);
  else if (spec.targetClusterName !== name) report(['spec', 'targetClusterName'], `must be the Link's name (${JSON.stringify(name)}): a Link is named after its target cluster`);
  if (spec.gatewayAddress !== '' && !parseHostPort(spec.gatewayAddress)) {
    report(['spec', 'gatewayAddress'], `must be host:port (e.g. 127.20.0.2:4143), got ${JSON.stringify(spec.gatewayAddress)}`);
  }
  for (const field of ['period', 'timeout'] as const) {
    const ms = parseDuration(spec.probeSpec[field]);
    if (ms === undefined || ms <= 0) report(['spec', 'probeSpec', field], `must be a positive duration such as 3s or 500ms, got ${JSON.stringify(spec.probeSpec[field])}`);
  }
  checkMinimum(spec.probeSpec.failureThreshold, 1, ['spec', 'probeSpec', 'failureThreshold'], report);
  if (spec.selector) checkLabelSelector(spec.selector, ['spec', 'selector'], report);
  if (spec.trustAnchorFingerprint !== undefined && !/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(spec.trustAnchorFingerprint)) {
    report(['spec', 'trustAnchorFingerprint'], 'must be a SHA-256 fingerprint as AB:CD:… (32 upper-case hex pairs)');
  }
}
