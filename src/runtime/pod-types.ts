// The workload shapes of src/api, with the further Kubernetes fields the local runtime reads when
// they are there (a manifest may set them; the workload controller sets some on the pods it makes).
import type {
  Container as ApiContainer,
  ContainerState,
  ContainerStatus,
  DeploymentStatus,
  EnvVar as ApiEnvVar,
  PodCondition,
  PodSpec as ApiPodSpec,
  PodStatus,
  StatefulSetStatus,
} from '../api/kinds.js';
import type { LabelSelector, ObjectMeta, Resource } from '../api/types.js';

export type { ContainerState, ContainerStatus, DeploymentStatus, PodCondition, PodStatus, StatefulSetStatus };

export interface EnvVar extends ApiEnvVar {
  valueFrom?: { fieldRef?: { fieldPath: string; apiVersion?: string } } & Record<string, unknown>;
}

export interface Probe {
  tcpSocket?: { port: number | string };
  httpGet?: { port: number | string; path?: string; scheme?: 'HTTP' | 'HTTPS' };
}

export interface Container extends Omit<ApiContainer, 'env' | 'image'> {
  image?: string;
  env?: EnvVar[];
  readinessProbe?: Probe;
}

export interface PodSpec extends Omit<ApiPodSpec, 'containers'> {
  containers: Container[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  hostname?: string;
  subdomain?: string;
  /** The node the pod is bound to; the local runtime's one node is named after its cluster. */
  nodeName?: string;
}

export interface PodTemplateSpec {
  metadata?: Pick<Partial<ObjectMeta>, 'labels' | 'annotations'>;
  spec: PodSpec;
}

export type Pod = Resource<PodSpec, PodStatus>;

export interface DeploymentSpec {
  replicas?: number;
  selector: LabelSelector;
  template: PodTemplateSpec;
  strategy?: { type?: 'RollingUpdate' | 'Recreate' };
}

export interface StatefulSetSpec {
  replicas?: number;
  selector: LabelSelector;
  template: PodTemplateSpec;
  serviceName?: string;
  podManagementPolicy?: 'OrderedReady' | 'Parallel';
  updateStrategy?: { type?: 'RollingUpdate' | 'OnDelete' };
}

export type Deployment = Resource<DeploymentSpec, DeploymentStatus>;
export type StatefulSet = Resource<StatefulSetSpec, StatefulSetStatus & Record<string, unknown>>;

/** A pod counts as ready when its Ready condition is True, as Kubernetes counts it. */
export function isPodReady(pod: Resource): boolean {
  const status = pod.status as PodStatus | undefined;
  return status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
