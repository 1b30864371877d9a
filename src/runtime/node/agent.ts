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
import { Informer } from '../../store/informer.js';
import type { KubeRest } from '../../store/kube-rest.js';
import { KubernetesStore } from '../../store/kubernetes.js';
import { ConflictError, NotFoundError } from '../../store/store.js';
import { PodAddressAllocator } from '../addresses.js';
import { errorMessage, type RuntimeLog } from '../log.js';
import { PodRunner, podDirectory } from '../pod-runner.js';
import type { ContainerStatus, Pod, PodStatus } from '../pod-types.js';
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
const REQUEST_TIMEOUT_MS = 15_000;
/** Set on the Node: where its pods' directories are, for `strait exec` and `strait logs` on this machine. */
export const PODS_DIR_ANNOTATION = 'strait.dev/pods-dir';

/** The block index of a `127.X.0.0/16` pod CIDR (the local runtime's numbering). */
export function blockIndexOf(podCidr: string): number {
  const m = /^127\.(\d{1,3})\.0\.0\/16$/.exec(podCidr);
  const index = m ? Number(m[1]) - 20 : -1;
  if (index < 0 || index > 235) throw new Error(`--pod-cidr ${podCidr}: must be a loopback block 127.X.0.0/16 with X from 20 to 255`);
  return index;
}

const MERGE_PATCH = 'application/merge-patch+json';

const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

interface Running {
  runner: PodRunner;
  files: PodFiles;
  tokens: ProjectedToken[];
  timer?: NodeJS.Timeout;
}

export async function startNodeAgent(opts: NodeAgentOptions): Promise<NodeAgent> {
  const store = await KubernetesStore.connect({ kubeconfig: opts.kubeconfig, context: opts.context, timeoutMs: REQUEST_TIMEOUT_MS });
  const agent = new Agent(opts, store);
  try {
    await agent.start();
  } catch (err) {
    agent.stop();
    throw err;
  }
  return { stop: () => agent.stop() };
}

class Agent {
  private readonly api: KubeRest;
  private readonly addresses: PodAddressAllocator;
  private readonly nodeIp: string;
  private readonly services: ServiceProxy;
  private readonly running = new Map<string, Running>();
  /** Pods being prepared or stopped, by uid: one change at a time per pod. */
  private readonly busy = new Map<string, Promise<void>>();
  private readonly pods = new Map<string, KubePod>();
  private readonly informers: Pick<Informer, 'kind' | 'start' | 'stop'>[] = [];
  /** Until the first list of pods is in: the addresses its pods hold are kept before any new pod gets one. */
  private podsListed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: NodeAgentOptions,
    private readonly store: KubernetesStore,
  ) {
    this.api = store.rest;
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
    const warn = (message: string) => this.log.warn(message);
    const listed = () => (this.podsListed = true);
    const pods = new Informer<KubePod & Resource>({ store: this.store, kind: 'Pod', warn, onResync: listed, onChange: (before, now) => this.podChanged(now ? (before ? 'MODIFIED' : 'ADDED') : 'DELETED', (now ?? before)!) });
    const services = new Informer<KubeService & Resource>({ store: this.store, kind: 'Service', warn, onChange: (before, now) => this.services.service(now ? (before ? 'MODIFIED' : 'ADDED') : 'DELETED', (now ?? before)!) });
    this.informers.push(pods, services);
    // Listing keeps being tried in the background when the first list fails.
    pods.start().then(listed, (err: unknown) => this.log.warn(`cannot list Pod (${errorMessage(err)}); trying again`));
    services.start().catch((err: unknown) => this.log.warn(`cannot list Service (${errorMessage(err)}); trying again`));
    this.log.info(`node ${this.opts.nodeName} registered at ${this.nodeIp}; pods get addresses in ${this.opts.podCidr}`);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const informer of this.informers) informer.stop();
    this.services.close();
    void this.store.close();
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
      await this.api.request('PATCH', path, { body: { metadata: { labels, annotations: { [PODS_DIR_ANNOTATION]: this.opts.dir } } }, contentType: MERGE_PATCH });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      await this.api.request('POST', '/api/v1/nodes', {
        body: {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: this.opts.nodeName, labels, annotations: { [PODS_DIR_ANNOTATION]: this.opts.dir } },
          spec: { podCIDR: this.opts.podCidr, podCIDRs: [this.opts.podCidr] },
        },
      });
    }
  }

  /** The Lease says the node lives; the Node's Ready condition says what it is. */
  private async renew(): Promise<void> {
    const now = new Date().toISOString();
    const status = {
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
    };
    await this.api.request('PATCH', `/api/v1/nodes/${this.opts.nodeName}/status`, { body: status, contentType: MERGE_PATCH });
    const lease = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.opts.nodeName}`;
    const spec = { holderIdentity: this.opts.nodeName, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() };
    try {
      await this.api.request('PATCH', lease, { body: { spec }, contentType: MERGE_PATCH });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      await this.api.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.opts.nodeName, ownerReferences: [] },
          spec,
        },
      });
    }
  }

  private readySince: string | undefined;

  private isMine(pod: KubePod): boolean {
    return pod.spec.nodeName === this.opts.nodeName;
  }

  private podChanged(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: KubePod): void {
    this.services.pod(type, pod);
    if (!this.isMine(pod)) return;
    const uid = pod.metadata.uid ?? '';
    // The first list hands over every pod before any is run (runs start after an await), so the
    // addresses already held by pods of this node are kept before any new pod gets one.
    if (!this.podsListed && type !== 'DELETED' && pod.status?.podIP && !this.running.has(uid)) this.addresses.reserve(pod.status.podIP);
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
    // A pod deleted meanwhile is a NotFoundError, which tells the runner to stop writing.
    return this.api.request<Resource>('PATCH', `/api/v1/namespaces/${pod.metadata.namespace ?? 'default'}/pods/${pod.metadata.name}/status`, { body, contentType: MERGE_PATCH });
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
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } },
      });
    } catch (err) {
      if (!(err instanceof NotFoundError) && !(err instanceof ConflictError)) throw err;
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
