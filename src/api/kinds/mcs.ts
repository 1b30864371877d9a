// The Multi-Cluster Services API (KEP-1645, multicluster.x-k8s.io/v1alpha1). A ServiceExport names
// the Service of the same namespace and name as part of the clusterset; every cluster that sees a
// member of it gets a ServiceImport, written by its control plane, and the name
// `<name>.<namespace>.svc.clusterset.local`.
import { z } from 'zod';
import type { Condition } from '../conditions.js';
import type { Resource } from '../types.js';
import { defineKind, ignored, Integer, objectSchema, Protocol } from './define.js';

export const MCS_GROUP = 'multicluster.x-k8s.io';
export const MCS_API_VERSION = `${MCS_GROUP}/v1alpha1`;

/** ServiceExport condition types, as the KEP names them. */
export const SERVICE_EXPORT_CONDITIONS = {
  /** True when the Service of the same name exists; False with reason `NoService` while it does not. */
  valid: 'Valid',
  /** True when the export's definition differs from the clusterset's (ports, headless or not). */
  conflict: 'Conflict',
  /** True once the export is offered to linked clusters. */
  ready: 'Ready',
} as const;

/** ServiceImport `spec.type`: one virtual address for the clusterset, or each endpoint by name. */
export const SERVICE_IMPORT_TYPES = ['ClusterSetIP', 'Headless'] as const;
export type ServiceImportType = (typeof SERVICE_IMPORT_TYPES)[number];

/** `app.kubernetes.io/managed-by` on the ServiceImports a control plane writes. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_STRAIT = 'strait';

export interface ServiceExportStatus {
  conditions?: Condition[];
}

/** A ServiceExport has nothing but its name: it exports the Service of the same name. */
export type ServiceExport = Resource<never, ServiceExportStatus>;

export const serviceExportKind = defineKind({
  group: MCS_GROUP,
  kind: 'ServiceExport',
  plural: 'serviceexports',
  shortNames: ['svcex'],
  namespaced: true,
  versions: ['v1alpha1'],
  nameRule: 'dns1035-label',
  schema: objectSchema({}),
});

const ServiceImportPortSchema = z.object({
  name: z.string().optional(),
  protocol: Protocol,
  appProtocol: z.string().optional(),
  port: Integer,
});

const ServiceImportSpecSchema = z.object({
  type: z.enum(SERVICE_IMPORT_TYPES),
  ports: z.array(ServiceImportPortSchema).default([]),
  /** Virtual addresses of a ClusterSetIP import; Strait's proxies resolve names, so it leaves them empty. */
  ips: ignored(z.array(z.string()).optional()),
  sessionAffinity: ignored(z.string().optional()),
  sessionAffinityConfig: ignored(z.unknown().optional()),
});

export type ServiceImportPort = z.output<typeof ServiceImportPortSchema>;
export type ServiceImportSpec = z.output<typeof ServiceImportSpecSchema>;

export interface ServiceImportStatus {
  /** Every cluster with a member of the service (this one included when its own Service takes part). */
  clusters: { cluster: string }[];
  /** Conflicts among the members' definitions (type `Conflict`), as on a ServiceExport. */
  conditions?: Condition[];
}

export type ServiceImport = Resource<ServiceImportSpec, ServiceImportStatus>;

export const serviceImportKind = defineKind({
  group: MCS_GROUP,
  kind: 'ServiceImport',
  plural: 'serviceimports',
  shortNames: ['svcim'],
  namespaced: true,
  versions: ['v1alpha1'],
  nameRule: 'dns1035-label',
  schema: objectSchema({ spec: ServiceImportSpecSchema }),
});

/**
 * Why a user may not write `object` (undefined when they may): ServiceImports belong to the
 * control plane, which writes them straight to its store; `strait apply` goes through admission.
 */
export function managedObjectProblem(object: Resource): string | undefined {
  if (object.kind !== 'ServiceImport') return undefined;
  const { namespace, name } = object.metadata;
  return `ServiceImport ${namespace ?? 'default'}/${name} is managed by Strait: export the Service with a ServiceExport in the exporting cluster`;
}
