// `strait node`: a stand-in for the kubelet and a container runtime on a host that cannot run
// containers. It registers a Node, renews its Lease, and runs the pods bound to it as processes
// with the local runtime's pod runner: each pod gets its own loopback address (status.podIP), its
// volumes as files, readiness from its probes, restarts with back-off and a graceful delete. It
// also makes Service ClusterIPs and NodePorts answer (services.ts), as kube-proxy would.
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../api/types.js';
import { VERSION } from '../../api/version.js';
import { NotFoundError } from '../../store/store.js';
import { PodAddressAllocator } from '../addresses.js';
import { errorMessage, type RuntimeLog } from '../log.js';
import { PodRunner, podDirectory } from '../pod-runner.js';
import type { ContainerStatus, Pod, PodStatus } from '../pod-types.js';
import { KubeApi, KubeApiError } from './kube-api.js';
import { PodConfigError, PodFiles, type KubePod, type ProjectedToken } from './pod-files.js';
import { ServiceProxy, type KubeService } from './services.js';

export interface NodeAgentOptions {
  kubeconfig: string;
  context?: string;
  nodeName: string;
  /** The loopback block the pods' addresses come from, `127.X.0.0/16`. */
  podCidr: string;
  /** Where pods' directories and logs live. */
  dir: string;
  log: RuntimeLog;
}

export interface NodeAgent {
  /** Stops supervising; the pods' processes keep running (as containers outlive a kubelet restart). */
  stop(): void;
}

const LEASE_SECONDS = 40;
const RENEW_MS = 10_000;
const PREPARE_RETRY_MS = 2000;
/** Set on the Node: where its pods' directories are, for `strait exec` and `strait logs` on this machine. */
export const PODS_DIR_ANNOTATION = 'strait.dev/pods-dir';

/** The block index of a `127.X.0.0/16` pod CIDR (the local runtime's numbering). */
export function blockIndexOf(podCidr: string): number {
  const m = /^127\.(\d{1,3})\.0\.0\/16$/.exec(podCidr);
  const index = m ? Number(m[1]) - 20 : -1;
  if (index < 0 || index > 235) throw new Error(`--pod-cidr ${podCidr}: must be a loopback block 127.X.0.0/16 with X from 20 to 255`);
  return index;
}

const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

interface Running {
  runner: PodRunner;
  files: PodFiles;
  tokens: ProjectedToken[];
  timer?: NodeJS.Timeout;
}

export async function startNodeAgent(opts: NodeAgentOptions): Promise<NodeAgent> {
  const agent = new Agent(opts);
  await agent.start();
  return { stop: () => agent.stop() };
}

class Agent {
  private readonly api: KubeApi;
  private readonly addresses: PodAddressAllocator;
  private readonly nodeIp: string;
  private readonly services: ServiceProxy;
  private readonly running = new Map<string, Running>();
  /** Pods being prepared or stopped, by uid: one change at a time per pod. */
  private readonly busy = new Map<string, Promise<void>>();
  private readonly pods = new Map<string, KubePod>();
  private readonly stops: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: NodeAgentOptions) {
    this.api = KubeApi.fromFile(opts.kubeconfig, opts.context);
    const index = blockIndexOf(opts.podCidr);
    this.addresses = new PodAddressAllocator(index);
    const prefix = opts.podCidr.split('.').slice(0, 2).join('.');
    this.nodeIp = `${prefix}.0.2`;
    this.addresses.reserve(this.nodeIp);
    this.services = new ServiceProxy(this.nodeIp, { host: this.api.server.hostname, port: Number(this.api.server.port || 443) }, opts.log);
  }

  private get log(): RuntimeLog {
    return this.opts.log;
  }

  async start(): Promise<void> {
    mkdirSync(this.opts.dir, { recursive: true });
    await this.register();
    await this.renew();
    this.timer = setInterval(() => void this.renew().catch((err: unknown) => this.log.warn(`cannot renew the node's lease: ${errorMessage(err)}`)), RENEW_MS);
    const onError = (what: string) => (err: Error) => this.log.warn(`watch of ${what} ended: ${err.message}; listing again`);
    this.stops.push(
      this.api.listWatch<KubePod>('/api/v1/pods', {}, { synced: (items) => this.syncPods(items), changed: (type, pod) => this.podChanged(type, pod) }, onError('pods')),
      this.api.listWatch<KubeService>('/api/v1/services', {}, { synced: (items) => this.services.setServices(items), changed: (type, s) => this.services.service(type, s) }, onError('services')),
    );
    this.log.info(`node ${this.opts.nodeName} registered at ${this.nodeIp}; pods get addresses in ${this.opts.podCidr}`);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const stop of this.stops) stop();
    this.services.close();
    for (const r of this.running.values()) {
      clearTimeout(r.timer);
      void r.runner.halt(false);
    }
  }

  private async register(): Promise<void> {
    const path = `/api/v1/nodes/${this.opts.nodeName}`;
    const labels = { 'kubernetes.io/hostname': this.opts.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch, 'node.strait.dev/agent': 'true' };
    try {
      await this.api.request('GET', path);
      await this.api.request('PATCH', path, { metadata: { labels, annotations: { [PODS_DIR_ANNOTATION]: this.opts.dir } } }, 'application/merge-patch+json');
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.status !== 404) throw err;
      await this.api.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: this.opts.nodeName, labels, annotations: { [PODS_DIR_ANNOTATION]: this.opts.dir } },
        spec: { podCIDR: this.opts.podCidr, podCIDRs: [this.opts.podCidr] },
      });
    }
  }

  /** The Lease says the node lives; the Node's Ready condition says what it is. */
  private async renew(): Promise<void> {
    const now = new Date().toISOString();
    await this.api.request('PATCH', `/api/v1/nodes/${this.opts.nodeName}/status`, {
      status: {
        addresses: [
          { type: 'InternalIP', address: this.nodeIp },
          { type: 'Hostname', address: this.opts.nodeName },
        ],
        capacity: { cpu: '2', memory: '24Gi', pods: '250' },
        allocatable: { cpu: '2', memory: '24Gi', pods: '250' },
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'strait node agent is running pods as processes', lastHeartbeatTime: now, lastTransitionTime: this.readySince ??= now }],
        nodeInfo: {
          kubeletVersion: `v${VERSION}-strait`,
          kubeProxyVersion: '',
          containerRuntimeVersion: `strait-processes://${VERSION}`,
          operatingSystem: 'linux',
          architecture: process.arch === 'x64' ? 'amd64' : process.arch,
          osImage: 'strait node agent',
          kernelVersion: release(),
          machineID: '',
          systemUUID: '',
          bootID: '',
        },
        daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
      },
    }, 'application/merge-patch+json');
    const lease = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.opts.nodeName}`;
    const spec = { holderIdentity: this.opts.nodeName, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() };
    try {
      await this.api.request('PATCH', lease, { spec }, 'application/merge-patch+json');
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.status !== 404) throw err;
      await this.api.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.nodeName, ownerReferences: [] },
        spec,
      });
    }
  }

  private readySince: string | undefined;

  private syncPods(items: KubePod[]): void {
    this.services.setPods(items);
    const mine = items.filter((p) => this.isMine(p));
    // Addresses already held by pods of this node are kept before any new pod gets one.
    for (const pod of mine) if (pod.status?.podIP && !this.running.has(pod.metadata.uid ?? '')) this.addresses.reserve(pod.status.podIP);
    const uids = new Set(mine.map((p) => p.metadata.uid ?? ''));
    for (const [uid, r] of this.running) if (!uids.has(uid)) this.serialize(uid, () => this.remove(uid, r.runner.pod as KubePod));
    for (const pod of mine) this.podChanged('MODIFIED', pod);
  }

  private isMine(pod: KubePod): boolean {
    return pod.spec.nodeName === this.opts.nodeName;
  }

  private podChanged(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: KubePod): void {
    this.services.pod(type, pod);
    if (!this.isMine(pod)) return;
    const uid = pod.metadata.uid ?? '';
    this.pods.set(uid, pod);
    if (type === 'DELETED') {
      this.pods.delete(uid);
      this.serialize(uid, () => this.remove(uid, pod));
    } else if (pod.metadata.deletionTimestamp) {
      this.serialize(uid, () => this.terminate(uid, pod));
    } else if (!this.running.has(uid) && !this.busy.has(uid) && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
      this.serialize(uid, () => this.run(uid, pod));
    }
  }

  /** Runs `work` after whatever is under way for the same pod. */
  private serialize(uid: string, work: () => Promise<void>): void {
    const before = this.busy.get(uid) ?? Promise.resolve();
    const next = before
      .then(work)
      .catch((err: unknown) => this.log.warn(`pod ${uid}: ${errorMessage(err)}`))
      .finally(() => {
        if (this.busy.get(uid) === next) this.busy.delete(uid);
      });
    this.busy.set(uid, next);
  }

  private async run(uid: string, pod: KubePod): Promise<void> {
    if (this.running.has(uid) || !this.pods.has(uid)) return;
    const namespace = pod.metadata.namespace ?? 'default';
    const files = new PodFiles(this.api, podDirectory(this.opts.dir, namespace, pod.metadata.name));
    let tokens: ProjectedToken[];
    let containers;
    try {
      mkdirSync(files.dir, { recursive: true });
      tokens = await files.prepare(pod);
      // Native sidecars (init containers that keep running) start first and run beside the app.
      const sidecars = (pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
      containers = (await files.resolveEnv(pod, [...sidecars, ...pod.spec.containers])).map((c) => ({ ...c, env: [...this.apiServerEnv(), ...(c.env ?? [])] }));
    } catch (err) {
      // A missing Secret waits for it, as the kubelet's CreateContainerConfigError; anything else
      // (the API server refusing a token while its cache has not yet seen the pod bound here,
      // a request that timed out) is tried again, as the kubelet retries a volume mount.
      await this.waiting(pod, err instanceof PodConfigError ? 'CreateContainerConfigError' : 'ContainerCreating', errorMessage(err));
      setTimeout(() => this.podChanged('MODIFIED', this.pods.get(uid) ?? pod), PREPARE_RETRY_MS).unref();
      return;
    }
    const ip = pod.status?.podIP && this.addresses.has(pod.status.podIP) ? pod.status.podIP : this.addresses.allocate();
    const sidecarNames = new Set((pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
    const runtimePod: Pod = { ...pod, spec: { ...pod.spec, containers, initContainers: undefined } as Pod['spec'] };
    // For `strait exec`: the pod as it runs, env values from Secrets included, so only its owner reads it.
    writeFileSync(join(files.dir, 'pod.json'), JSON.stringify({ pod: runtimePod, podIP: ip }), { mode: 0o600 });
    const store = { updateStatus: (_ref: unknown, status: unknown) => this.writeStatus(pod, status as PodStatus, sidecarNames) };
    const runner = new PodRunner(runtimePod, ip, { store, clusterDir: this.opts.dir, log: this.log });
    const running: Running = { runner, files, tokens };
    this.running.set(uid, running);
    this.scheduleRenewal(uid, running);
    await runner.begin();
  }

  private scheduleRenewal(uid: string, r: Running): void {
    if (r.tokens.length === 0) return;
    const due = Math.min(...r.tokens.map((t) => t.renewAt));
    r.timer = setTimeout(() => {
      void (async () => {
        for (const token of r.tokens) {
          if (token.renewAt > Date.now() + 1000) continue;
          try {
            token.renewAt = await r.files.renew(r.runner.pod as KubePod, token);
          } catch (err) {
            token.renewAt = Date.now() + 10_000;
            this.log.warn(`pod ${r.runner.name}: cannot renew its token ${token.file}: ${errorMessage(err)}`);
          }
        }
        if (this.running.get(uid) === r) this.scheduleRenewal(uid, r);
      })();
    }, Math.max(1000, due - Date.now()));
    r.timer.unref();
  }

  /** How a pod finds the API server, as the kubelet tells it (here the server's own address, which its certificate names). */
  private apiServerEnv(): { name: string; value: string }[] {
    const port = this.api.server.port || '443';
    return [
      { name: 'KUBERNETES_SERVICE_HOST', value: this.api.server.hostname },
      { name: 'KUBERNETES_SERVICE_PORT', value: port },
      { name: 'KUBERNETES_PORT', value: `tcp://${this.api.server.hostname}:${port}` },
    ];
  }

  /** Writes the runner's status, with native sidecars under initContainerStatuses as the API expects. */
  private async writeStatus(pod: KubePod, status: PodStatus, sidecars: Set<string>): Promise<Resource> {
    const all: ContainerStatus[] = status.containerStatuses ?? [];
    const body = {
      status: {
        ...status,
        hostIP: this.nodeIp,
        hostIPs: [{ ip: this.nodeIp }],
        containerStatuses: all.filter((s) => !sidecars.has(s.name)),
        ...(sidecars.size > 0 ? { initContainerStatuses: all.filter((s) => sidecars.has(s.name)) } : {}),
      },
    };
    try {
      return await this.api.request<Resource>('PATCH', `/api/v1/namespaces/${pod.metadata.namespace ?? 'default'}/pods/${pod.metadata.name}/status`, body, 'application/merge-patch+json');
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) throw new NotFoundError(err.message);
      throw err;
    }
  }

  /** A pod that cannot start yet says why, as the kubelet's waiting reasons do. */
  private async waiting(pod: KubePod, reason: string, message: string): Promise<void> {
    this.log.warn(`pod ${pod.metadata.namespace}/${pod.metadata.name}: ${message}`);
    const statuses = pod.spec.containers.map((c) => ({ name: c.name, image: c.image ?? '', imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason, message } } }));
    await this.writeStatus(pod, { phase: 'Pending', containerStatuses: statuses }, new Set()).catch(() => undefined);
  }

  /** A graceful delete: the processes get their grace period, then the pod object goes. */
  private async terminate(uid: string, pod: KubePod): Promise<void> {
    await this.stopRunning(uid);
    try {
      await this.api.request('DELETE', `/api/v1/namespaces/${pod.metadata.namespace ?? 'default'}/pods/${pod.metadata.name}`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid },
      });
    } catch (err) {
      if (!(err instanceof KubeApiError) || (err.status !== 404 && err.status !== 409)) throw err;
    }
  }

  private async remove(uid: string, pod: KubePod): Promise<void> {
    const r = this.running.get(uid);
    await this.stopRunning(uid);
    (r?.files ?? new PodFiles(this.api, podDirectory(this.opts.dir, pod.metadata.namespace ?? 'default', pod.metadata.name))).remove();
  }

  private async stopRunning(uid: string): Promise<void> {
    const r = this.running.get(uid);
    if (!r) return;
    clearTimeout(r.timer);
    await r.runner.halt(true);
    this.running.delete(uid);
    this.addresses.release(r.runner.ip);
  }
}
