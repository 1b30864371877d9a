// The columns `strait get` prints for each kind, as kubectl prints them.
import type { Resource } from '../api/types.js';
import { age } from './output.js';

interface ContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  state?: { running?: unknown; waiting?: { reason?: string }; terminated?: { reason?: string } };
}
interface PodStatus {
  phase?: string;
  podIP?: string;
  reason?: string;
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
}
interface PodSpec {
  containers?: { name: string; image?: string }[];
  initContainers?: { name: string; restartPolicy?: string }[];
}

export interface Printer {
  headers: string[];
  wideHeaders?: string[];
  row(o: Resource, now: number): (string | number)[];
  wideRow?(o: Resource, cluster: string): (string | number)[];
}

const meta = (o: Resource) => o.metadata;

export function podReady(o: Resource): string {
  const spec = o.spec as PodSpec | undefined;
  const status = o.status as PodStatus | undefined;
  const statuses = status?.containerStatuses ?? [];
  // As kubectl counts them: native sidecars (init containers that restart always) are the pod's containers too.
  const sidecars = new Set((spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  const sidecarStatuses = (status?.initContainerStatuses ?? []).filter((s) => sidecars.has(s.name));
  const total = (spec?.containers?.length ?? statuses.length) + sidecars.size;
  return `${[...statuses, ...sidecarStatuses].filter((s) => s.ready).length}/${total}`;
}

/** What kubectl's STATUS column shows: a waiting/terminated reason when there is one, else the phase. */
export function podStatus(o: Resource): string {
  const st = (o.status as PodStatus | undefined) ?? {};
  if (st.reason) return st.reason;
  for (const c of st.containerStatuses ?? []) {
    if (c.state?.waiting?.reason) return c.state.waiting.reason;
    if (c.state?.terminated?.reason) return c.state.terminated.reason;
  }
  return st.phase ?? 'Pending';
}

function restarts(o: Resource): number {
  return ((o.status as PodStatus | undefined)?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
}

interface ServicePortLike {
  port: number;
  protocol?: string;
  nodePort?: number;
}

function servicePorts(o: Resource): string {
  const ports = ((o.spec as { ports?: ServicePortLike[] } | undefined)?.ports ?? []).map(
    (p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`,
  );
  return ports.length ? ports.join(',') : '<none>';
}

function selectorText(sel: Record<string, string> | undefined): string {
  const entries = Object.entries(sel ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '<none>';
}

interface WorkloadStatus {
  replicas?: number;
  readyReplicas?: number;
  updatedReplicas?: number;
  availableReplicas?: number;
}

function desired(o: Resource): number {
  return (o.spec as { replicas?: number } | undefined)?.replicas ?? 1;
}

function templateContainers(o: Resource): { name: string; image?: string }[] {
  return (o.spec as { template?: { spec?: PodSpec } } | undefined)?.template?.spec?.containers ?? [];
}

const PRINTERS: Record<string, Printer> = {
  Pod: {
    headers: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
    wideHeaders: ['IP', 'CLUSTER'],
    row: (o, now) => [meta(o).name, podReady(o), podStatus(o), restarts(o), age(meta(o).creationTimestamp, now)],
    wideRow: (o, cluster) => [(o.status as PodStatus | undefined)?.podIP ?? '<none>', cluster],
  },
  Deployment: {
    headers: ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    row: (o, now) => {
      const s = (o.status as WorkloadStatus | undefined) ?? {};
      return [meta(o).name, `${s.readyReplicas ?? 0}/${desired(o)}`, s.updatedReplicas ?? 0, s.availableReplicas ?? 0, age(meta(o).creationTimestamp, now)];
    },
    wideRow: (o) => [
      templateContainers(o).map((c) => c.name).join(','),
      templateContainers(o).map((c) => c.image ?? '').join(','),
      selectorText((o.spec as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector?.matchLabels),
    ],
  },
  StatefulSet: {
    headers: ['NAME', 'READY', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES'],
    row: (o, now) => [meta(o).name, `${(o.status as WorkloadStatus | undefined)?.readyReplicas ?? 0}/${desired(o)}`, age(meta(o).creationTimestamp, now)],
    wideRow: (o) => [templateContainers(o).map((c) => c.name).join(','), templateContainers(o).map((c) => c.image ?? '').join(',')],
  },
  Service: {
    headers: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
    wideHeaders: ['SELECTOR'],
    row: (o, now) => {
      const spec = (o.spec as { type?: string; clusterIP?: string } | undefined) ?? {};
      return [meta(o).name, spec.type ?? 'ClusterIP', spec.clusterIP ?? '<none>', '<none>', servicePorts(o), age(meta(o).creationTimestamp, now)];
    },
    wideRow: (o) => [selectorText((o.spec as { selector?: Record<string, string> } | undefined)?.selector)],
  },
  Namespace: {
    headers: ['NAME', 'STATUS', 'AGE'],
    row: (o, now) => [meta(o).name, (o.status as { phase?: string } | undefined)?.phase ?? 'Active', age(meta(o).creationTimestamp, now)],
  },
  ServiceAccount: {
    headers: ['NAME', 'SECRETS', 'AGE'],
    row: (o, now) => [meta(o).name, 0, age(meta(o).creationTimestamp, now)],
  },
  TrafficSplit: {
    headers: ['NAME', 'SERVICE', 'BACKENDS', 'AGE'],
    row: (o, now) => {
      const spec = (o.spec as { service?: string; backends?: { service: string; weight?: number }[] } | undefined) ?? {};
      const backends = (spec.backends ?? []).map((b) => `${b.service}:${b.weight ?? 0}`).join(', ');
      return [meta(o).name, spec.service ?? '', backends || '<none>', age(meta(o).creationTimestamp, now)];
    },
  },
};

const GENERIC: Printer = {
  headers: ['NAME', 'AGE'],
  row: (o, now) => [meta(o).name, age(meta(o).creationTimestamp, now)],
};

export function printerFor(kind: string): Printer {
  return PRINTERS[kind] ?? GENERIC;
}
