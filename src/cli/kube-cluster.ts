// A Kubernetes cluster as the CLI's commands see one, with --context: its resources through the
// Kubernetes API (validated first as on the local runtime); traffic figures and services from the
// control plane's admin port; a pod's log and its environment from the node agent on this machine
// that runs it (the test environment's stand-in for the kubelet).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Pod } from '../api/kinds.js';
import type { Resource, ResourceRef } from '../api/types.js';
import { ADMIN_PORT } from '../control/admin.js';
import { AdminClient, NotRunningError } from '../control/admin-client.js';
import type { ServiceListing } from '../control/discovery/listing.js';
import { COMPONENT_LABEL, PART_OF_SELECTOR, STRAIT_NAMESPACE } from '../control/kube-layout.js';
import type { TrafficWindow } from '../control/metrics/history.js';
import { readLog } from '../runtime/logs.js';
import { PODS_DIR_ANNOTATION } from '../runtime/node/agent.js';
import { podDirectory } from '../runtime/pod-runner.js';
import { KubernetesStore } from '../store/kubernetes.js';
import type { ApplyResult, DeleteResult, ListResult } from '../store/store.js';
import { CliError } from './context.js';
import { loadKubeConfig, requestTimeoutMs, type KubeFlags } from './kube-context.js';
import { podReady, podStatus } from './printers.js';

export class KubeCluster {
  private admin?: Promise<AdminClient>;

  private constructor(
    private readonly store: KubernetesStore,
    /** The kube context, which names the cluster in messages. */
    readonly cluster: string,
    private readonly timeoutMs: number,
  ) {}

  /** Connects to the context the flags name (as kubectl reads them) and checks the API server answers. */
  static async connect(flags: KubeFlags): Promise<KubeCluster> {
    const config = await loadKubeConfig(flags);
    const context = config.getCurrentContext();
    const timeoutMs = requestTimeoutMs(flags.requestTimeout) ?? 10_000;
    const store = await KubernetesStore.connect({ kubeconfig: flags.kubeconfig, context, timeoutMs });
    try {
      await store.rest.request('GET', '/version');
    } catch (err) {
      store.rest.close();
      throw new CliError(`the API server of context ${context} at ${store.rest.server.origin} did not answer: ${(err as Error).message}`, 1, ['check it is running: kubectl --context ' + context + ' cluster-info']);
    }
    return new KubeCluster(store, context, timeoutMs);
  }

  close(): void {
    this.store.rest.close();
  }

  list(kind: string, opts: { namespace?: string; selector?: string } = {}): Promise<ListResult> {
    return this.store.list(kind, { namespace: opts.namespace, labelSelector: opts.selector });
  }

  get(ref: ResourceRef): Promise<Resource | undefined> {
    return this.store.get(ref);
  }

  /** Server-side apply of objects the CLI has validated; a dry run changes nothing. */
  async apply(objects: Resource[], dryRun = false): Promise<ApplyResult[]> {
    if (dryRun) return objects.map((object) => ({ outcome: 'unchanged', object }));
    return this.store.apply(objects);
  }

  delete(refs: ResourceRef[]): Promise<DeleteResult[]> {
    return this.store.delete(refs);
  }

  async stats(windowSeconds: number): Promise<TrafficWindow> {
    return this.askControlPlane((admin) => admin.stats(windowSeconds));
  }

  async services(namespace?: string): Promise<ServiceListing> {
    return this.askControlPlane((admin) => admin.services(namespace));
  }

  private async askControlPlane<T>(ask: (admin: AdminClient) => Promise<T>): Promise<T> {
    const admin = await this.controlPlane();
    try {
      return await ask(admin);
    } catch (err) {
      if (!(err instanceof NotRunningError)) throw err;
      throw new CliError(err.message, 1, ["the CLI reads the control plane's admin port at its pod address: run it where pods are reachable (a node of the cluster, or a pod)"]);
    }
  }

  /** The container's log, read from the pod's directory on this machine. */
  async logs(namespace: string, pod: string, opts: { container?: string; follow?: boolean; tail?: number }): Promise<Readable> {
    const { dir, pod: running, declared } = await this.podFiles(namespace, pod);
    // As kubectl logs: the first app container unless one is named; the node runs sidecars among them.
    const names = (running.spec?.containers ?? []).map((c) => c.name);
    const container = opts.container ?? (declared.spec as { containers?: { name: string }[] }).containers?.[0]?.name;
    if (!container || !names.includes(container)) throw new CliError(`container "${container}" is not in pod ${pod}; its containers: ${names.join(', ')}`);
    const stream = readLog(join(dir, `${container}.log`), { follow: opts.follow === true, tail: opts.tail });
    if (!stream) throw new CliError(`container ${container} of pod ${pod} has not started yet; see: kubectl --context ${this.cluster} describe pod ${pod} -n ${namespace}`);
    return stream;
  }

  /** The pod's directory on this machine, the pod as its node agent runs it (sidecars among its containers, env resolved), and as declared. */
  async podFiles(namespace: string, name: string): Promise<{ dir: string; pod: Pod; declared: Resource }> {
    const pod = await this.get({ kind: 'Pod', namespace, name });
    if (!pod) throw new CliError(`pod "${name}" not found in namespace "${namespace}" of context ${this.cluster}`);
    const nodeName = (pod.spec as { nodeName?: string }).nodeName;
    if (!nodeName) throw new CliError(`pod ${name} is not scheduled yet; see: kubectl --context ${this.cluster} describe pod ${name} -n ${namespace}`);
    // Nodes are no kind of the store's: read as the API serves them.
    const node = await this.store.rest.requestOrMissing<Resource>('GET', `/api/v1/nodes/${encodeURIComponent(nodeName)}`);
    const podsDir = node?.metadata.annotations?.[PODS_DIR_ANNOTATION];
    if (!podsDir) throw new CliError(`pod ${name} runs on node ${nodeName}, which is not a strait node agent on this machine; use kubectl`);
    const dir = podDirectory(podsDir, namespace, name);
    try {
      const written = JSON.parse(readFileSync(join(dir, 'pod.json'), 'utf8')) as { pod: Pod };
      return { dir, pod: { ...written.pod, status: pod.status } as Pod, declared: pod };
    } catch {
      throw new CliError(`pod ${name} runs on node ${nodeName}, whose pods are not on this machine (no ${dir}/pod.json)`);
    }
  }

  /**
   * The admin API of a ready control-plane pod, at its address. The API server's pod proxy would
   * reach it from anywhere, but it refuses loopback pod addresses (pod ResourceLocation wants a
   * global unicast IP), and the test environment's pods are on loopback.
   */
  private controlPlane(): Promise<AdminClient> {
    this.admin ??= (async () => {
      const pods = (await this.list('Pod', { namespace: STRAIT_NAMESPACE, selector: `${PART_OF_SELECTOR},${COMPONENT_LABEL}=control-plane` })).items;
      const ready = pods.find((p) => podStatus(p) === 'Running' && p.status && (p.status as { podIP?: string }).podIP && isReady(p));
      if (!ready) {
        throw new CliError(`no control-plane pod of Strait is ready in context ${this.cluster}`, 1, [`see: kubectl --context ${this.cluster} get pods -n ${STRAIT_NAMESPACE}`, `or install Strait: strait install --context ${this.cluster}`]);
      }
      return new AdminClient({ host: (ready.status as { podIP: string }).podIP, port: ADMIN_PORT }, this.cluster, this.timeoutMs);
    })();
    return this.admin;
  }
}

function isReady(pod: Resource): boolean {
  const [ready, total] = podReady(pod).split('/');
  return ready === total;
}
