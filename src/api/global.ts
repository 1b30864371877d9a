// The names that make one service out of many clusters' services: Cilium's global-service
// annotations and Strait's own, the failover preference, selective export, and the labels of the
// Multi-Cluster Services API. Both sides of a link, discovery and the CLI read them from here.
import { isDns1123Label } from './names.js';
import type { Resource } from './types.js';

/** Either set to "true" makes a Service one service with its namesakes in linked clusters. */
export const GLOBAL_ANNOTATIONS = ['service.cilium.io/global', 'strait.dev/global'] as const;
/** "false" keeps a global service's endpoints in its own cluster (it still uses the others'). */
export const SHARED_ANNOTATION = 'service.cilium.io/shared';
/** `local`, `remote` or `none`: which cluster's endpoints a caller prefers (Cilium's meaning). */
export const AFFINITY_ANNOTATION = 'service.cilium.io/affinity';
/** An ordered preference of clusters or regions, e.g. "cluster2,cluster3". */
export const FAILOVER_ANNOTATION = 'strait.dev/failover';
/** The linked clusters that may see a service, e.g. "cluster2,cluster3"; without it, all may. */
export const EXPORT_TO_ANNOTATION = 'strait.dev/export-to';

/** On an EndpointSlice of a clusterset member (MCS): the service it belongs to, as the KEP labels them. */
export const MCS_SERVICE_NAME_LABEL = 'multicluster.kubernetes.io/service-name';
/** The domain of clusterset names: `<svc>.<ns>.svc.clusterset.local`. */
export const CLUSTERSET_DOMAIN = 'clusterset.local';
/** A cluster's region, as Kubernetes labels a node's (on remote EndpointSlices: their cluster's). */
export const REGION_LABEL = 'topology.kubernetes.io/region';

export const AFFINITIES = ['local', 'remote', 'none'] as const;
export type Affinity = (typeof AFFINITIES)[number];

const annotationsOf = (object: Resource) => object.metadata.annotations ?? {};

/** True when the Service is global by annotation. */
export function isGlobalService(service: Resource): boolean {
  return GLOBAL_ANNOTATIONS.some((a) => annotationsOf(service)[a] === 'true');
}

/** False only when the Service says `service.cilium.io/shared: "false"`. */
export function isSharedService(service: Resource): boolean {
  return annotationsOf(service)[SHARED_ANNOTATION] !== 'false';
}

/** The affinity a Service asks for: `none` without the annotation, undefined for a value that is none of the three. */
export function affinityOf(service: Resource): Affinity | undefined {
  const value = annotationsOf(service)[AFFINITY_ANNOTATION];
  if (value === undefined || value === '') return 'none';
  return (AFFINITIES as readonly string[]).includes(value) ? (value as Affinity) : undefined;
}

/**
 * A comma-separated list of cluster or region names (failover, export-to): the names in order, or
 * why the text is not one (an empty entry, a name that is not a DNS-1123 label, a repeat).
 */
export function parseNameList(text: string): { names: string[] } | { problem: string } {
  const names = text.split(',').map((n) => n.trim());
  const seen = new Set<string>();
  for (const name of names) {
    if (name === '') return { problem: `${JSON.stringify(text)} has an empty entry: write names separated by commas, e.g. "cluster2,cluster3"` };
    if (!isDns1123Label(name)) return { problem: `${JSON.stringify(name)} is not a cluster or region name (a DNS-1123 label)` };
    if (seen.has(name)) return { problem: `${JSON.stringify(name)} is named twice: each may appear once` };
    seen.add(name);
  }
  return { names };
}

/** Conditions the control plane writes on a Service's status.conditions. */
export const SERVICE_CONDITIONS = {
  /** True while the Service's namesakes in linked clusters define it differently (reason PortConflict, TypeConflict): the oldest wins. */
  conflict: 'strait.dev/Conflict',
  /** False (reason UnknownCluster) while `strait.dev/export-to` names clusters with no link credential from this one. */
  exportTo: 'strait.dev/ExportTo',
} as const;
