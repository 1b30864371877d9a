// `strait exec --context C`: a command in the environment of a Kubernetes pod that a node agent on
// this machine runs (strait node), in the pod's directory, as `kubectl exec` would run it inside the
// container. The Node says where its pods' directories are.
import { readFileSync } from 'node:fs';
import type { Pod } from '../api/kinds.js';
import { matchesSelector } from '../api/labels.js';
import type { LabelSelector, Resource } from '../api/types.js';
import { KubeApi, KubeApiError, KubeConfigError } from '../runtime/node/kube-api.js';
import { PODS_DIR_ANNOTATION } from '../runtime/node/agent.js';
import { podDirectory } from '../runtime/pod-runner.js';
import { podEnvironment } from '../runtime/pods.js';
import { CliError, UsageError } from './context.js';
import { podReady, podStatus } from './printers.js';

const WORKLOADS: Record<string, { kind: string; path: string }> = {
  deploy: { kind: 'Deployment', path: 'deployments' },
  deployment: { kind: 'Deployment', path: 'deployments' },
  deployments: { kind: 'Deployment', path: 'deployments' },
  sts: { kind: 'StatefulSet', path: 'statefulsets' },
  statefulset: { kind: 'StatefulSet', path: 'statefulsets' },
  statefulsets: { kind: 'StatefulSet', path: 'statefulsets' },
};

async function get<T>(api: KubeApi, path: string, what: string, context: string): Promise<T> {
  try {
    return await api.request<T>('GET', path);
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) throw new CliError(`${what} not found in context ${context}`);
    throw new CliError(`context ${context}: ${(err as Error).message}`);
  }
}

/** The pod `target` names: POD, or the first ready pod of deploy/NAME or sts/NAME. */
async function findKubePod(api: KubeApi, context: string, namespace: string, target: string): Promise<Resource> {
  const slash = target.indexOf('/');
  if (slash < 0 || ['pod', 'pods', 'po'].includes(target.slice(0, slash))) {
    const name = target.slice(slash + 1);
    return get<Resource>(api, `/api/v1/namespaces/${namespace}/pods/${name}`, `pod "${name}" in namespace "${namespace}"`, context);
  }
  const workload = WORKLOADS[target.slice(0, slash)];
  if (!workload) throw new UsageError(`cannot pick a pod of "${target.slice(0, slash)}"; use a pod name, deploy/NAME or sts/NAME`);
  const name = target.slice(slash + 1);
  const owner = await get<Resource<{ selector?: LabelSelector }>>(api, `/apis/apps/v1/namespaces/${namespace}/${workload.path}/${name}`, `${workload.kind} "${name}" in namespace "${namespace}"`, context);
  const pods = (await get<{ items: Resource[] }>(api, `/api/v1/namespaces/${namespace}/pods`, 'pods', context)).items.filter((p) => matchesSelector(p.metadata.labels, owner.spec?.selector ?? {}));
  const running = pods.filter((p) => podStatus(p) === 'Running');
  const ready = running.filter((p) => {
    const [r, t] = podReady(p).split('/');
    return r === t;
  });
  const pod = ready[0] ?? running[0] ?? pods[0];
  if (!pod) throw new CliError(`${workload.kind} "${name}" has no pods yet; see: kubectl --context ${context} get pods -n ${namespace}`);
  return pod;
}

export interface KubeExecTarget {
  kubeconfig: string;
  context: string;
  namespace: string;
}

/** The pod's directory and its environment, read from what its node agent wrote. */
export async function kubePodEnvironment(target: KubeExecTarget, podRef: string, container?: string): Promise<{ cwd: string; env: Record<string, string>; pod: string }> {
  let api: KubeApi;
  try {
    api = KubeApi.fromFile(target.kubeconfig, target.context);
  } catch (err) {
    if (err instanceof KubeConfigError) throw new CliError(err.message);
    throw err;
  }
  const pod = await findKubePod(api, target.context, target.namespace, podRef);
  if (podStatus(pod) !== 'Running') throw new CliError(`pod ${pod.metadata.name} is ${podStatus(pod)}, not Running; see: kubectl --context ${target.context} describe pod ${pod.metadata.name} -n ${target.namespace}`);
  const nodeName = (pod.spec as { nodeName?: string }).nodeName;
  const node = await get<Resource>(api, `/api/v1/nodes/${nodeName}`, `node "${nodeName}"`, target.context);
  const podsDir = node.metadata.annotations?.[PODS_DIR_ANNOTATION];
  if (!podsDir) throw new CliError(`pod ${pod.metadata.name} runs on node ${nodeName}, which is not a strait node agent on this machine; use kubectl exec`);
  const cwd = podDirectory(podsDir, target.namespace, pod.metadata.name);
  let written: { pod: Pod };
  try {
    written = JSON.parse(readFileSync(`${cwd}/pod.json`, 'utf8')) as { pod: Pod };
  } catch {
    throw new CliError(`pod ${pod.metadata.name} runs on node ${nodeName}, whose pods are not on this machine (no ${cwd}/pod.json)`);
  }
  const runtimePod = { ...written.pod, status: pod.status } as Pod;
  // As kubectl exec: the pod's first app container unless one is named (its sidecars come after).
  const first = (pod.spec as { containers?: { name: string }[] }).containers?.[0]?.name;
  return { cwd, env: podEnvironment(runtimePod, container ?? first), pod: pod.metadata.name };
}
