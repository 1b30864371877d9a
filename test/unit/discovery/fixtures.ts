// Cluster objects for the discovery tests, written into a real store as `strait apply` and the
// runtime would write them (a Pod's status comes from the runtime, through updateStatus).
import assert from 'node:assert/strict';
import type { Pod, PodStatus, Service, ServicePort, TrafficSplit } from '../../../src/api/kinds.js';
import { ResourceCache, type CacheChange } from '../../../src/control/discovery/cache.js';
import { PROXY_CONTAINER } from '../../../src/api/mesh.js';
import type { Store } from '../../../src/store/store.js';

export const CLUSTER = { cluster: 'cluster1', trustDomain: 'cluster.local', clusterDomain: 'cluster.local' };

export function service(
  name: string,
  options: { namespace?: string; selector?: Record<string, string>; ports?: Partial<ServicePort>[]; annotations?: Record<string, string>; clusterIP?: string } = {},
): Service {
  const ports = (options.ports ?? [{ name: 'http', port: 5000 }]).map((p) => ({ protocol: 'TCP' as const, port: 80, ...p, targetPort: p.targetPort ?? p.port ?? 80 }));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: options.namespace ?? 'sample', ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: { type: 'ClusterIP', selector: options.selector ?? { app: name }, ports, ...(options.clusterIP ? { clusterIP: options.clusterIP } : {}) },
  };
}

export interface PodOptions {
  namespace?: string;
  labels?: Record<string, string>;
  ip?: string;
  ready?: boolean;
  meshed?: boolean;
  serviceAccount?: string;
  ports?: { name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' }[];
}

export function pod(name: string, options: PodOptions = {}): Pod {
  const app = { name: 'app', image: 'docker.io/istio/examples-helloworld-v1', ports: (options.ports ?? [{ name: 'http', containerPort: 5000 }]).map((p) => ({ protocol: 'TCP' as const, ...p })) };
  const containers = options.meshed === false ? [app] : [app, { name: PROXY_CONTAINER, image: 'strait/proxy', ports: [{ name: 'strait-inbound', containerPort: 4143, protocol: 'TCP' as const }] }];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: options.namespace ?? 'sample', labels: options.labels ?? { app: 'helloworld' } },
    spec: { containers, ...(options.serviceAccount ? { serviceAccountName: options.serviceAccount } : {}) },
  };
}

export function podStatus(ip: string | undefined, ready: boolean, containers = 2): PodStatus {
  return {
    phase: 'Running',
    ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    containerStatuses: Array.from({ length: containers }, (_, i) => ({ name: `c${i}`, image: 'x', ready, restartCount: 0 })),
  };
}

/** Writes a pod and the status the runtime would give it. */
export async function addPod(store: Store, name: string, options: PodOptions = {}): Promise<void> {
  const object = pod(name, options);
  await store.apply([object]);
  await store.updateStatus({ kind: 'Pod', namespace: object.metadata.namespace, name }, podStatus(options.ip, options.ready ?? true));
}

export async function setReady(store: Store, name: string, ip: string, ready: boolean, namespace = 'sample'): Promise<void> {
  await store.updateStatus({ kind: 'Pod', namespace, name }, podStatus(ip, ready));
}

export function trafficSplit(name: string, root: string, backends: { service: string; weight: number }[], apiVersion = 'split.smi-spec.io/v1alpha2', namespace = 'sample'): TrafficSplit {
  return { apiVersion, kind: 'TrafficSplit', metadata: { name, namespace }, spec: { service: root, backends } };
}

/** A started cache over `store` that records the changes it passes on. */
export async function startCache(store: Store, onChange: (c: CacheChange) => void = () => {}): Promise<ResourceCache> {
  const cache = new ResourceCache(store, { onChange, onResync: () => {}, warn: (m) => assert.fail(m) });
  await cache.start();
  return cache;
}

/** Lets the store's watches deliver what has been committed. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
