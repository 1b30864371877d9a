// The kinds Strait knows, and how the CLI names them (`po`, `deploy`, `svc`, `trafficsplits.split.smi-spec.io`).
//
// Adding a kind: declare it with `defineKind` in a file under kinds/ (one file per API family) and
// list it in KINDS below. Kind names are unique across groups, since the store addresses objects
// by kind, namespace and name.
import { namespaceKind, serviceAccountKind, serviceKind } from './kinds/core.js';
import { apiVersionOf, type KindDefinition } from './kinds/define.js';
import { endpointSliceKind } from './kinds/endpointslice.js';
import { serviceProfileKind } from './kinds/linkerd.js';
import { serviceExportKind, serviceImportKind } from './kinds/mcs.js';
import { configMapKind } from './kinds/configmap.js';
import { secretKind } from './kinds/secret.js';
import { trafficSplitKind } from './kinds/smi.js';
import { linkKind } from './kinds/strait.js';
import { deploymentKind, podKind, statefulSetKind } from './kinds/workloads.js';
import { closest } from './suggest.js';
import type { Resource } from './types.js';

export { apiVersionOf, type KindDefinition } from './kinds/define.js';
export type { Namespace, Service, ServiceAccount, ServicePort, ServiceSpec } from './kinds/core.js';
export { isHeadless } from './kinds/core.js';
export type {
  Container,
  ContainerPort,
  ContainerState,
  ContainerStatus,
  Deployment,
  DeploymentSpec,
  DeploymentStatus,
  EnvVar,
  Pod,
  PodCondition,
  PodSpec,
  PodStatus,
  PodTemplateSpec,
  StatefulSet,
  StatefulSetSpec,
  StatefulSetStatus,
} from './kinds/workloads.js';
export type { TrafficSplit, TrafficSplitBackend, TrafficSplitSpec } from './kinds/smi.js';
export type { ServiceExport, ServiceExportStatus, ServiceImport, ServiceImportPort, ServiceImportSpec, ServiceImportStatus, ServiceImportType } from './kinds/mcs.js';
export type { RequestMatch, ResponseClass, ResponseMatch, RetryBudget, RouteSpec, ServiceProfile, ServiceProfileSpec } from './kinds/linkerd.js';

export const KINDS: readonly KindDefinition[] = [
  namespaceKind,
  serviceKind,
  serviceAccountKind,
  podKind,
  deploymentKind,
  statefulSetKind,
  trafficSplitKind,
  serviceProfileKind,
  endpointSliceKind,
  secretKind,
  configMapKind,
  linkKind,
  serviceExportKind,
  serviceImportKind,
];

const byKind = new Map(KINDS.map((k) => [k.kind, k]));

/** The kind named exactly `kind` (`Deployment`), as objects and store refs name it. */
export function kindNamed(kind: string): KindDefinition | undefined {
  return byKind.get(kind);
}

/** The kind of an object, if Strait serves its apiVersion and kind. */
export function findKind(apiVersion: string, kind: string): KindDefinition | undefined {
  const def = byKind.get(kind);
  if (!def) return undefined;
  return def.versions.some((v) => apiVersionOf(def, v) === apiVersion) ? def : undefined;
}

export function kindOf(resource: Resource): KindDefinition | undefined {
  return findKind(resource.apiVersion, resource.kind);
}

/** True for kinds whose objects live in a namespace (everything but Namespace, so far). */
export function isNamespaced(kind: string): boolean {
  return byKind.get(kind)?.namespaced ?? true;
}

/** A resource type the CLI was given that names no kind; the message suggests the nearest name. */
export class UnknownKindError extends Error {
  constructor(
    readonly text: string,
    readonly suggestion?: string,
  ) {
    super(`unknown resource type "${text}"${suggestion ? `; did you mean "${suggestion}"?` : ''}`);
    this.name = 'UnknownKindError';
  }
}

/** Every name the CLI accepts for a kind: plural, singular, kind, short names. */
function namesOf(def: KindDefinition): string[] {
  return [def.plural, def.singular, ...def.shortNames];
}

/**
 * The kind a CLI argument names, as kubectl resolves it: `pods`, `pod`, `po`, `Pod`, or qualified by
 * group (`deployments.apps`, `trafficsplits.split.smi-spec.io`) or by version and group
 * (`deployments.v1.apps`). Case does not matter. Throws `UnknownKindError` with the nearest name.
 */
export function resolveKind(text: string): KindDefinition {
  const lower = text.trim().toLowerCase();
  const dot = lower.indexOf('.');
  const name = dot < 0 ? lower : lower.slice(0, dot);
  const qualifier = dot < 0 ? undefined : lower.slice(dot + 1);
  for (const def of KINDS) {
    if (!namesOf(def).includes(name)) continue;
    if (qualifier === undefined) return def;
    if (qualifier === def.group || def.versions.some((v) => qualifier === `${v}.${def.group}` || (def.group === '' && qualifier === v))) return def;
  }
  const suggestion = closest(name, KINDS.flatMap(namesOf));
  throw new UnknownKindError(text, suggestion);
}
