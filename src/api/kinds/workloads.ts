// Workloads: Pod, and the controllers that make pods, Deployment and StatefulSet.
import { z } from 'zod';
import { formatSelector, matchesSelector } from '../labels.js';
import { dns1123LabelError, portNameError } from '../names.js';
import type { FieldPath } from '../issues.js';
import type { Resource } from '../types.js';
import {
  checkAnnotations,
  checkLabels,
  checkLabelSelector,
  checkMinimum,
  checkPort,
  checkUnique,
  defineKind,
  Integer,
  LabelSelectorSchema,
  objectSchema,
  Protocol,
  type Report,
} from './define.js';

export const EnvVarSchema = z.object({
  name: z.string().min(1, { error: 'must not be empty' }),
  value: z.string().optional(),
  // `valueFrom` (secrets, config maps, field refs) is accepted and ignored by the local runtime.
});

export const ContainerPortSchema = z.object({
  /** Lets a Service's `targetPort` refer to this port by name. */
  name: z.string().optional(),
  containerPort: Integer,
  protocol: Protocol,
});

export const ContainerSchema = z.object({
  name: z.string(),
  /** Known sample images map to Strait's sample apps; any other image runs `command`. */
  image: z.string({ error: (iss) => (iss.input === undefined ? 'required field is missing' : 'must be a string') }).min(1, { error: 'must not be empty' }),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(EnvVarSchema).optional(),
  ports: z.array(ContainerPortSchema).optional(),
});

export const PodSpecSchema = z.object({
  containers: z.array(ContainerSchema).min(1, { error: 'must have at least one container' }),
  /** The pod's identity (`spiffe://<trust-domain>/ns/<ns>/sa/<serviceAccountName>`); `default` when absent. */
  serviceAccountName: z.string().optional(),
});

export const PodTemplateSpecSchema = z.object({
  metadata: z
    .object({
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  spec: PodSpecSchema,
});

const Replicas = Integer.default(1);

export const DeploymentSpecSchema = z.object({
  replicas: Replicas,
  selector: LabelSelectorSchema,
  template: PodTemplateSpecSchema,
});

export const StatefulSetSpecSchema = z.object({
  replicas: Replicas,
  selector: LabelSelectorSchema,
  /** The headless Service that gives each pod its own name (`web-0.web`). */
  serviceName: z.string().optional(),
  template: PodTemplateSpecSchema,
});

export type EnvVar = z.output<typeof EnvVarSchema>;
export type ContainerPort = z.output<typeof ContainerPortSchema>;
export type Container = z.output<typeof ContainerSchema>;
export type PodSpec = z.output<typeof PodSpecSchema>;
export type PodTemplateSpec = z.output<typeof PodTemplateSpecSchema>;
export type DeploymentSpec = z.output<typeof DeploymentSpecSchema>;
export type StatefulSetSpec = z.output<typeof StatefulSetSpecSchema>;

/** Written by the local runtime; the shape `kubectl get pod -o yaml` shows. */
export interface PodStatus {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  /** The pod's own loopback address in the local runtime. */
  podIP?: string;
  podIPs?: { ip: string }[];
  hostIP?: string;
  startTime?: string;
  reason?: string;
  message?: string;
  conditions?: PodCondition[];
  containerStatuses?: ContainerStatus[];
}

export interface PodCondition {
  type: 'PodScheduled' | 'Initialized' | 'ContainersReady' | 'Ready';
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ContainerStatus {
  name: string;
  image: string;
  /** What the image resolved to; Kubernetes requires it, so a pod read back with `get -o yaml` applies again. */
  imageID: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  state?: ContainerState;
  lastState?: ContainerState;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode: number; signal?: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string };
}

/** Written by the local runtime, as Kubernetes' controllers report it. */
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
}

export interface StatefulSetStatus {
  observedGeneration?: number;
  replicas: number;
  readyReplicas?: number;
  currentReplicas?: number;
  updatedReplicas?: number;
}

export type Pod = Resource<PodSpec, PodStatus>;
export type Deployment = Resource<DeploymentSpec, DeploymentStatus>;
export type StatefulSet = Resource<StatefulSetSpec, StatefulSetStatus>;

export const podKind = defineKind({
  group: '',
  kind: 'Pod',
  plural: 'pods',
  shortNames: ['po'],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: { openApiType: 'V1Pod', model: async () => (await import('kubernetes-models/v1/Pod')).Pod },
  schema: objectSchema({ spec: PodSpecSchema }),
  check: (pod, report) => checkPodSpec(pod.spec, ['spec'], report),
});

export const deploymentKind = defineKind({
  group: 'apps',
  kind: 'Deployment',
  plural: 'deployments',
  shortNames: ['deploy'],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: { openApiType: 'V1Deployment', model: async () => (await import('kubernetes-models/apps/v1/Deployment')).Deployment },
  schema: objectSchema({ spec: DeploymentSpecSchema }),
  check: (deployment, report) => checkPodController(deployment.spec, report),
});

export const statefulSetKind = defineKind({
  group: 'apps',
  kind: 'StatefulSet',
  plural: 'statefulsets',
  shortNames: ['sts'],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: { openApiType: 'V1StatefulSet', model: async () => (await import('kubernetes-models/apps/v1/StatefulSet')).StatefulSet },
  schema: objectSchema({ spec: StatefulSetSpecSchema }),
  check: (statefulSet, report) => checkPodController(statefulSet.spec, report),
});

/** Deployment and StatefulSet: a non-empty selector that selects the pods their template makes. */
function checkPodController(spec: DeploymentSpec | StatefulSetSpec, report: Report): void {
  const { selector, template } = spec;
  checkMinimum(spec.replicas, 0, ['spec', 'replicas'], report);
  if (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0) {
    report(['spec', 'selector'], 'must not be empty');
  } else {
    checkLabelSelector(selector, ['spec', 'selector'], report);
    const labels = template.metadata?.labels;
    if (!matchesSelector(labels, selector)) {
      const got = Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || 'no labels';
      report(['spec', 'template', 'metadata', 'labels'], `must match spec.selector (${formatSelector(selector)}), got ${got}`);
    }
  }
  checkLabels(template.metadata?.labels, ['spec', 'template', 'metadata', 'labels'], report);
  checkAnnotations(template.metadata?.annotations, ['spec', 'template', 'metadata', 'annotations'], report);
  checkPodSpec(template.spec, ['spec', 'template', 'spec'], report);
}

export function checkPodSpec(spec: PodSpec, path: FieldPath, report: Report): void {
  const containersAt = [...path, 'containers'];
  spec.containers.forEach((container, i) => {
    const at = [...containersAt, i];
    const nameError = container.name === '' ? 'must not be empty' : dns1123LabelError(container.name);
    if (nameError) report([...at, 'name'], container.name === '' ? nameError : `${JSON.stringify(container.name)} ${nameError}`);
    const ports = container.ports ?? [];
    ports.forEach((port, j) => {
      checkPort(port.containerPort, [...at, 'ports', j, 'containerPort'], report);
      if (port.name === undefined) return;
      const error = portNameError(port.name);
      if (error) report([...at, 'ports', j, 'name'], `${JSON.stringify(port.name)} ${error}`);
    });
    checkUnique(ports.map((p) => p.name), [...at, 'ports'], 'name', 'port name', report);
  });
  checkUnique(spec.containers.map((c) => c.name), containersAt, 'name', 'container name', report);
}
