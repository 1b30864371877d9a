// Core kinds: Namespace, Service, ServiceAccount (Pod is with the workloads).
import { isIP } from 'node:net';
import { z } from 'zod';
import { AFFINITIES, AFFINITY_ANNOTATION, EXPORT_TO_ANNOTATION, FAILOVER_ANNOTATION, parseNameList } from '../global.js';
import type { Resource } from '../types.js';
import { dns1123LabelError, portNameError } from '../names.js';
import { checkLabels, checkPort, checkUnique, defineKind, Integer, objectSchema, Protocol, type Report } from './define.js';

export const namespaceKind = defineKind({
  group: '',
  kind: 'Namespace',
  plural: 'namespaces',
  shortNames: ['ns'],
  namespaced: false,
  versions: ['v1'],
  nameRule: 'dns1123-label',
  kubernetes: { openApiType: 'V1Namespace', model: async () => (await import('kubernetes-models/v1/Namespace')).Namespace },
  schema: objectSchema({}),
});

export const serviceAccountKind = defineKind({
  group: '',
  kind: 'ServiceAccount',
  plural: 'serviceaccounts',
  shortNames: ['sa'],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: { openApiType: 'V1ServiceAccount', model: async () => (await import('kubernetes-models/v1/ServiceAccount')).ServiceAccount },
  schema: objectSchema({}),
});

export const ServicePortSchema = z
  .object({
    /** Required when the Service has more than one port. */
    name: z.string().optional(),
    protocol: Protocol,
    /** A hint of the protocol spoken (`http`, `kubernetes.io/h2c`, …). */
    appProtocol: z.string().optional(),
    port: Integer,
    /** The pods' port, by number or by a container port's name; defaults to `port`. */
    targetPort: z.union([Integer, z.string()], { error: 'must be a port number or a port name' }).optional(),
  })
  .transform((p) => ({ ...p, targetPort: p.targetPort ?? p.port }));

export const ServiceSpecSchema = z.object({
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
  /** `None` makes the Service headless: its name resolves to each pod rather than to one address. */
  clusterIP: z.string().optional(),
  /** Pods with these labels are the Service's endpoints. */
  selector: z.record(z.string(), z.string()).optional(),
  ports: z.array(ServicePortSchema).default([]),
});

export type ServicePort = z.output<typeof ServicePortSchema>;
export type ServiceSpec = z.output<typeof ServiceSpecSchema>;
export type Service = Resource<ServiceSpec>;
export type Namespace = Resource<never>;
export type ServiceAccount = Resource<never>;

export function isHeadless(spec: ServiceSpec): boolean {
  return spec.clusterIP === 'None';
}

export const serviceKind = defineKind({
  group: '',
  kind: 'Service',
  plural: 'services',
  shortNames: ['svc'],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1035-label',
  kubernetes: { openApiType: 'V1Service', model: async () => (await import('kubernetes-models/v1/Service')).Service },
  schema: objectSchema({ spec: ServiceSpecSchema.prefault({}) }),
  check: (service, report) => {
    checkServiceSpec(service.spec, report);
    checkServiceAnnotations(service.metadata.annotations ?? {}, report);
  },
});

/**
 * The annotations that choose among a global service's clusters. Whether the clusters a failover
 * list names exist is for the caller that knows the mesh (the CLI's apply), not for the schema.
 */
function checkServiceAnnotations(annotations: Record<string, string>, report: Report): void {
  const at = ['metadata', 'annotations'];
  const affinity = annotations[AFFINITY_ANNOTATION];
  if (affinity !== undefined && !(AFFINITIES as readonly string[]).includes(affinity)) {
    report([...at, AFFINITY_ANNOTATION], `${JSON.stringify(affinity)} is not an affinity: use one of ${AFFINITIES.join(', ')}`);
  }
  const failover = annotations[FAILOVER_ANNOTATION];
  if (failover !== undefined) {
    const parsed = parseNameList(failover);
    if ('problem' in parsed) report([...at, FAILOVER_ANNOTATION], parsed.problem);
  }
  const exportTo = annotations[EXPORT_TO_ANNOTATION];
  if (exportTo !== undefined) {
    const parsed = parseNameList(exportTo);
    if ('problem' in parsed) report([...at, EXPORT_TO_ANNOTATION], `${parsed.problem}; list the linked clusters that may see the service`);
  }
}

function checkServiceSpec(spec: ServiceSpec, report: Report): void {
  const at = ['spec'];
  const { clusterIP } = spec;
  if (clusterIP !== undefined && clusterIP !== '' && clusterIP !== 'None' && isIP(clusterIP) === 0) {
    report([...at, 'clusterIP'], `must be None or an IP address, got ${JSON.stringify(clusterIP)}`);
  }
  if (spec.ports.length === 0 && !isHeadless(spec) && spec.type !== 'ExternalName') {
    report([...at, 'ports'], 'required field is missing (only a headless Service, clusterIP: None, may have no ports)');
  }
  checkLabels(spec.selector, [...at, 'selector'], report);
  spec.ports.forEach((port, i) => {
    const portAt = [...at, 'ports', i];
    if (port.name === undefined && spec.ports.length > 1) report([...portAt, 'name'], 'required when a Service has more than one port');
    if (port.name !== undefined) {
      const error = dns1123LabelError(port.name);
      if (error) report([...portAt, 'name'], `${JSON.stringify(port.name)} ${error}`);
    }
    checkPort(port.port, [...portAt, 'port'], report);
    const target = port.targetPort;
    if (typeof target === 'number') checkPort(target, [...portAt, 'targetPort'], report);
    if (typeof target === 'string') {
      const error = portNameError(target);
      if (error) report([...portAt, 'targetPort'], `port name ${JSON.stringify(target)} ${error}`);
    }
  });
  checkUnique(spec.ports.map((p) => p.name), [...at, 'ports'], 'name', 'port name', report);
  checkUnique(spec.ports.map((p) => `${p.port}/${p.protocol}`), [...at, 'ports'], 'port', 'port/protocol', report);
}
