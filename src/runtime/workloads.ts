// The workload controller: turns Deployments and StatefulSets into Pod objects in the store, as
// Kubernetes' controllers do (the pod supervisor then runs them), and keeps their status. It also
// cascades deletions: a Namespace's objects and objects whose owners are gone are deleted.
// Level-triggered: every change queues the owner it concerns; each owner is reconciled from a
// fresh read of the store, one at a time, so a reconcile always sees the writes of the last one.
import { isDeepStrictEqual } from 'node:util';
import { matchesSelector } from '../api/labels.js';
import type { Resource } from '../api/types.js';
import { refOf } from '../api/types.js';
import { WorkQueue } from '../store/queue.js';
import { ExpiredError, type Store, type Watch } from '../store/store.js';
import { collectGarbage, namespacedKinds, purgeNamespace } from './garbage.js';
import { errorMessage, silentLog, type RuntimeLog } from './log.js';
import { isPodReady, type Deployment, type DeploymentStatus, type Pod, type StatefulSet, type StatefulSetStatus } from './pod-types.js';
import { controllerOf, deploymentPodName, ownsPod, podFromTemplate, podOrdinal, releasedBy, templateHash } from './templates.js';

export const TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const REVISION_LABEL = 'controller-revision-hash';
export const STATEFUL_POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

const DEFAULT_RESYNC_MS = 30_000;
const RETRY_MS = 1000;

export interface WorkloadControllerOptions {
  log?: RuntimeLog;
  /** How often every owner is reconciled even without a change (default 30 s). */
  resyncMs?: number;
  /** Changes a new pod before it is written, as Kubernetes' mutating admission (proxy injection) does. */
  admitPod?: (pod: Pod) => Promise<Pod>;
}

export interface WorkloadController {
  stop(): Promise<void>;
}

/** Starts the controller; resolves once every existing owner has been reconciled once. */
export async function startWorkloadController(store: Store, opts: WorkloadControllerOptions = {}): Promise<WorkloadController> {
  const controller = new Controller(store, opts.log ?? silentLog, opts.admitPod ?? ((pod) => Promise.resolve(pod)));
  await controller.start(opts.resyncMs ?? DEFAULT_RESYNC_MS);
  return { stop: () => controller.stop() };
}

type Task = { kind: 'Deployment' | 'StatefulSet'; namespace: string; name: string } | { kind: 'collect' | 'purge'; namespace: string };

function taskKey(t: Task): string {
  return 'name' in t ? `${t.kind}/${t.namespace}/${t.name}` : `${t.kind}/${t.namespace}`;
}

/** The task a key names (names and namespaces hold no '/'). */
function taskOf(key: string): Task {
  const [kind, namespace, name] = key.split('/') as [Task['kind'], string, string | undefined];
  return kind === 'Deployment' || kind === 'StatefulSet' ? { kind, namespace, name: name! } : { kind: kind, namespace };
}

class Controller {
  /** Tasks by key, one at a time, each retried alone when it fails. */
  private readonly queue = new WorkQueue<string>({ retry: { initialMs: RETRY_MS, maxMs: RETRY_MS }, process: (keys) => this.work(keys) });
  private watch: Watch | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** Namespaced kinds to sweep: Strait's own, and any other the watch has shown. */
  private readonly kinds = new Set(namespacedKinds());

  constructor(
    private readonly store: Store,
    private readonly log: RuntimeLog,
    private readonly admitPod: (pod: Pod) => Promise<Pod>,
  ) {}

  async start(resyncMs: number): Promise<void> {
    const { resourceVersion } = await this.store.list('Namespace');
    await this.resync();
    this.watchFrom(resourceVersion);
    this.resyncTimer = setInterval(() => void this.resync().catch((err: unknown) => this.log.warn(`resync failed: ${errorMessage(err)}`)), resyncMs);
    this.resyncTimer.unref();
    await this.queue.settled();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.stop();
    clearInterval(this.resyncTimer);
    for (const t of this.retryTimers) clearTimeout(t);
    await this.queue.stop();
  }

  /** Queues every owner and every namespace that has objects. */
  private async resync(): Promise<void> {
    const namespaces = new Set<string>();
    for (const kind of this.kinds) {
      for (const object of (await this.store.list(kind)).items) {
        const namespace = object.metadata.namespace ?? 'default';
        namespaces.add(namespace);
        if (kind === 'Deployment' || kind === 'StatefulSet') this.enqueue({ kind, namespace, name: object.metadata.name });
      }
    }
    for (const namespace of namespaces) this.enqueue({ kind: 'collect', namespace });
  }

  private watchFrom(resourceVersion: string): void {
    if (this.stopped) return;
    this.watch = this.store.watch(
      { resourceVersion },
      (e) => this.observe(e.type, e.object),
      (err) => {
        if (this.stopped) return;
        if (!(err instanceof ExpiredError)) this.log.warn(`watch ended: ${errorMessage(err)}; listing again`);
        void this.restartWatch();
      },
    );
  }

  private async restartWatch(): Promise<void> {
    try {
      const { resourceVersion } = await this.store.list('Namespace');
      await this.resync();
      this.watchFrom(resourceVersion);
    } catch (err) {
      if (this.stopped) return;
      this.log.warn(`cannot list objects: ${errorMessage(err)}; retrying`);
      this.later(() => void this.restartWatch());
    }
  }

  /** What a change means: which owner, namespace or garbage to look at. */
  private observe(type: string, object: Resource): void {
    const namespace = object.metadata.namespace;
    if (object.kind === 'Namespace') {
      if (type === 'DELETED') this.enqueue({ kind: 'purge', namespace: object.metadata.name });
      return;
    }
    if (namespace === undefined) return;
    this.kinds.add(object.kind);
    if (object.kind === 'Deployment' || object.kind === 'StatefulSet') this.enqueue({ kind: object.kind, namespace, name: object.metadata.name });
    const owner = controllerOf(object);
    if (object.kind === 'Pod' && (owner?.kind === 'Deployment' || owner?.kind === 'StatefulSet')) {
      this.enqueue({ kind: owner.kind, namespace, name: owner.name });
    }
    if (type === 'DELETED') this.enqueue({ kind: 'collect', namespace });
  }

  private enqueue(task: Task): void {
    if (this.stopped) return;
    this.queue.add(taskKey(task));
  }

  /** Runs each task in turn; returns those that failed. */
  private async work(keys: string[]): Promise<string[]> {
    const failed: string[] = [];
    for (const key of keys) {
      if (this.stopped) break;
      try {
        await this.run(taskOf(key));
      } catch (err) {
        if (this.stopped) break;
        this.log.warn(`${key}: ${errorMessage(err)}; retrying`);
        failed.push(key);
      }
    }
    return failed;
  }

  private later(fn: () => void): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      fn();
    }, RETRY_MS);
    this.retryTimers.add(timer);
  }

  private async run(task: Task): Promise<void> {
    switch (task.kind) {
      case 'Deployment':
        return this.reconcileDeployment(task.namespace, task.name);
      case 'StatefulSet':
        return this.reconcileStatefulSet(task.namespace, task.name);
      case 'purge': {
        const deleted = await purgeNamespace(this.store, task.namespace, this.kinds);
        if (deleted.length > 0) this.log.info(`namespace ${task.namespace} deleted: deleted the ${deleted.length} objects in it`);
        return;
      }
      case 'collect': {
        const deleted = await collectGarbage(this.store, task.namespace, this.kinds);
        for (const ref of deleted) this.log.info(`${ref.kind} ${task.namespace}/${ref.name} deleted: its owner is gone`);
        return;
      }
    }
  }

  /**
   * Pods an owner makes must match its selector, or it would make new ones without end. Validation
   * refuses such an owner; this guards the store against one written some other way.
   */
  private selectsOwnTemplate(owner: Deployment | StatefulSet): boolean {
    if (matchesSelector(owner.spec?.template.metadata?.labels, owner.spec?.selector ?? {})) return true;
    this.log.error(`${owner.kind} ${owner.metadata.namespace ?? 'default'}/${owner.metadata.name}: spec.template.metadata.labels do not match spec.selector; no pods are made`);
    return false;
  }

  /**
   * The owner's pods, and the names of all pods in its namespace. Pods that left its selector are
   * released (their owner reference removed).
   */
  private async podsOf(owner: Deployment | StatefulSet): Promise<{ owned: Pod[]; taken: Set<string> }> {
    const namespace = owner.metadata.namespace ?? 'default';
    const pods = (await this.store.list('Pod', { namespace })).items as Pod[];
    const released = pods.filter((p) => releasedBy(owner, p));
    if (released.length > 0) {
      await this.store.apply(
        released.map((p) => ({
          ...p,
          metadata: { ...p.metadata, ownerReferences: (p.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid) },
        })),
      );
    }
    return { owned: pods.filter((p) => ownsPod(owner, p)), taken: new Set(pods.map((p) => p.metadata.name)) };
  }

  private async reconcileDeployment(namespace: string, name: string): Promise<void> {
    const deployment = (await this.store.get({ kind: 'Deployment', namespace, name })) as Deployment | undefined;
    const spec = deployment?.spec;
    if (!deployment || !spec || !this.selectsOwnTemplate(deployment)) return;
    const { owned: pods, taken } = await this.podsOf(deployment);
    const replicas = spec.replicas ?? 1;
    const hash = templateHash(spec.template);
    const isCurrent = (p: Pod) => p.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash;
    const current = pods.filter(isCurrent);
    const old = pods.filter((p) => !isCurrent(p));

    // Pods of the current template, scaled to the replica count.
    const surplus = deletionOrder(current).slice(0, Math.max(0, current.length - replicas));
    const kept = current.filter((p) => !surplus.includes(p));
    const created = Array.from({ length: Math.max(0, replicas - current.length) }, () => {
      const podName = deploymentPodName(name, hash, taken);
      taken.add(podName);
      return podFromTemplate(deployment, podName, { labels: { [TEMPLATE_HASH_LABEL]: hash } });
    });
    // Pods of an older template: all at once for Recreate; for a rolling update, as many as new
    // pods have become ready (the new pods come first).
    const oldToKeep = spec.strategy?.type === 'Recreate' ? 0 : Math.max(0, replicas - kept.filter(isPodReady).length);
    const retired = deletionOrder(old).slice(0, Math.max(0, old.length - oldToKeep));

    const deleted = [...surplus, ...retired];
    if (deleted.length > 0) await this.store.delete(deleted.map(refOf));
    if (created.length > 0) await this.store.apply(await Promise.all(created.map(this.admitPod)));
    if (created.length + deleted.length > 0) {
      this.log.info(`deployment ${namespace}/${name}: ${describeChanges(created, deleted)} (${replicas} wanted)`);
    }

    const remaining = [...pods.filter((p) => !deleted.includes(p)), ...created];
    const ready = remaining.filter(isPodReady).length;
    const status: DeploymentStatus & { unavailableReplicas?: number } = {
      observedGeneration: deployment.metadata.generation ?? 1,
      replicas: remaining.length,
      updatedReplicas: kept.length + created.length,
      readyReplicas: ready,
      availableReplicas: ready,
    };
    if (replicas > ready) status.unavailableReplicas = replicas - ready;
    await this.writeStatus(deployment, status);
  }

  private async reconcileStatefulSet(namespace: string, name: string): Promise<void> {
    const statefulSet = (await this.store.get({ kind: 'StatefulSet', namespace, name })) as StatefulSet | undefined;
    const spec = statefulSet?.spec;
    if (!statefulSet || !spec || !this.selectsOwnTemplate(statefulSet)) return;
    const { owned: pods } = await this.podsOf(statefulSet);
    const replicas = spec.replicas ?? 1;
    const revision = `${name}-${templateHash(spec.template)}`;
    const ordered = spec.podManagementPolicy !== 'Parallel';
    const byOrdinal = new Map<number, Pod>();
    const misnamed: Pod[] = [];
    for (const pod of pods) {
      const ordinal = podOrdinal(name, pod.metadata.name);
      if (ordinal === undefined) misnamed.push(pod);
      else byOrdinal.set(ordinal, pod);
    }

    // Pods 0…replicas-1; with OrderedReady, each only once the one before it is ready.
    const created: Pod[] = [];
    let allReady = true;
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const pod = byOrdinal.get(ordinal);
      if (pod && isPodReady(pod)) continue;
      allReady = false;
      if (!pod) created.push(statefulPod(statefulSet, ordinal, revision));
      if (ordered) break;
    }
    // Scale down from the highest ordinal.
    const condemned = [...byOrdinal.entries()].filter(([ordinal]) => ordinal >= replicas).sort(([a], [b]) => b - a).map(([, pod]) => pod);
    // A rolling update replaces one pod at a time, from the highest ordinal, while all are ready.
    const outdated = [...byOrdinal.entries()]
      .filter(([ordinal, pod]) => ordinal < replicas && pod.metadata.labels?.[REVISION_LABEL] !== revision)
      .sort(([a], [b]) => b - a)
      .map(([, pod]) => pod);
    const rolling = spec.updateStrategy?.type !== 'OnDelete' && allReady && condemned.length === 0 ? outdated.slice(0, 1) : [];

    const deleted = [...misnamed, ...condemned, ...rolling];
    for (const pod of deleted) await this.store.delete([refOf(pod)]);
    if (created.length > 0) await this.store.apply(await Promise.all(created.map(this.admitPod)));
    if (created.length + deleted.length > 0) {
      this.log.info(`statefulset ${namespace}/${name}: ${describeChanges(created, deleted)} (${replicas} wanted)`);
    }

    const remaining = [...pods.filter((p) => !deleted.includes(p)), ...created];
    const ready = remaining.filter(isPodReady).length;
    const updated = remaining.filter((p) => p.metadata.labels?.[REVISION_LABEL] === revision).length;
    const previous = statefulSet.status;
    const currentRevision = updated === remaining.length ? revision : ((previous?.currentRevision as string | undefined) ?? revision);
    const status: StatefulSetStatus & Record<string, unknown> = {
      observedGeneration: statefulSet.metadata.generation ?? 1,
      replicas: remaining.length,
      readyReplicas: ready,
      currentReplicas: remaining.filter((p) => p.metadata.labels?.[REVISION_LABEL] === currentRevision).length,
      updatedReplicas: updated,
      availableReplicas: ready,
      currentRevision,
      updateRevision: revision,
      collisionCount: 0,
    };
    await this.writeStatus(statefulSet, status);
  }

  private async writeStatus(owner: Resource, status: object): Promise<void> {
    if (isDeepStrictEqual(owner.status, status)) return;
    await this.store.updateStatus(refOf(owner), status);
  }
}

function statefulPod(statefulSet: StatefulSet, ordinal: number, revision: string): Pod {
  const name = `${statefulSet.metadata.name}-${ordinal}`;
  const spec: { hostname: string; subdomain?: string } = { hostname: name };
  if (statefulSet.spec?.serviceName) spec.subdomain = statefulSet.spec.serviceName;
  return podFromTemplate(statefulSet, name, {
    labels: { [REVISION_LABEL]: revision, [STATEFUL_POD_NAME_LABEL]: name, [POD_INDEX_LABEL]: String(ordinal) },
    spec,
  });
}

/**
 * Which pods to delete first when there are too many, as Kubernetes ranks them: not ready before
 * ready, more restarts before fewer, newer before older.
 */
export function deletionOrder(pods: Pod[]): Pod[] {
  const restarts = (p: Pod) => (p.status?.containerStatuses ?? []).reduce((n, s) => n + s.restartCount, 0);
  return [...pods].sort(
    (a, b) =>
      Number(isPodReady(a)) - Number(isPodReady(b)) ||
      restarts(b) - restarts(a) ||
      (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
      b.metadata.name.localeCompare(a.metadata.name),
  );
}

function describeChanges(created: Pod[], deleted: Pod[]): string {
  const parts: string[] = [];
  if (created.length > 0) parts.push(`created ${created.map((p) => p.metadata.name).join(', ')}`);
  if (deleted.length > 0) parts.push(`deleted ${deleted.map((p) => p.metadata.name).join(', ')}`);
  return parts.join('; ');
}
