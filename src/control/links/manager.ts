// Runs one LinkController per Link in strait-system, as the Links come and go: a new or changed
// Link (re)starts its controller (the mirrors stay meanwhile), a deleted one stops it and removes
// its mirrors and member slices. Those whose Link was deleted while the control plane was down are
// removed at start.
import type { Logger } from 'pino';
import { SLICE_MANAGED_BY_LABEL } from '../../api/kinds/endpointslice.js';
import { LINK_CONTROLLER_NAME, MIRROR_LABELS, MULTICLUSTER_NAMESPACE, type Link, type LinkStatus } from '../../api/kinds/strait.js';
import type { TlsIdentity } from '../../identity/tls.js';
import { Informer } from '../../store/informer.js';
import { WorkQueue } from '../../store/queue.js';
import { NotFoundError, type Store } from '../../store/store.js';
import { LinkController } from './controller.js';
import { removeMirrors } from './writer.js';

export interface LinkManagerOptions {
  store: Store;
  /** This cluster's name. */
  cluster: string;
  trustDomain: string;
  identity: TlsIdentity;
  /** The mesh's namespace sameness, for Links that do not set their own. */
  sameness: boolean;
  log: Logger;
}

interface Running {
  controller: LinkController;
  /** The spec it was started with, as JSON: a status write does not restart it, a spec change does. */
  spec: string;
}

export class LinkManager {
  private readonly running = new Map<string, Running>();
  private readonly links: Informer<Link>;
  /** Links (`namespace/name`) whose controller may not match them. */
  private readonly queue: WorkQueue<string>;

  constructor(private readonly options: LinkManagerOptions) {
    const { store, log } = options;
    this.links = new Informer<Link>({
      store,
      kind: 'Link',
      warn: (message) => log.warn(`links: ${message}`),
      onChange: (previous, current) => {
        const link = (current ?? previous)!;
        this.queue.add(`${link.metadata.namespace ?? ''}/${link.metadata.name}`);
      },
    });
    this.queue = new WorkQueue({
      paused: true,
      process: (keys) => this.sync(keys),
      onError: (err) => log.error({ err: err.message }, 'links: cannot bring the link controllers in line with the Links; trying again'),
    });
  }

  /** Starts a controller for every Link, and removes the mirrors of Links deleted while the control plane was down. */
  async start(): Promise<void> {
    await this.links.start();
    this.queue.start();
    await this.queue.settled();
    await this.removeOrphans();
  }

  async stop(): Promise<void> {
    this.links.stop();
    await this.queue.stop();
    await Promise.all([...this.running.values()].map((r) => r.controller.stop()));
    this.running.clear();
  }

  /** The controllers' current status, by target cluster. */
  statuses(): Record<string, LinkStatus> {
    return Object.fromEntries([...this.running.values()].map((r) => [r.controller.name, r.controller.status()]));
  }

  /** The running controller of a link, for tests and status. */
  controller(target: string): LinkController | undefined {
    return this.running.get(target)?.controller;
  }

  private async sync(keys: string[]): Promise<void> {
    for (const key of keys) {
      const slash = key.indexOf('/');
      const namespace = key.slice(0, slash);
      const link = this.links.get(namespace, key.slice(slash + 1));
      if (link) await this.reconcile(link);
      else if (namespace === MULTICLUSTER_NAMESPACE) await this.remove(key.slice(slash + 1));
    }
  }

  /** Mirrors and member slices of links that are gone (deleted while this control plane was not running). */
  private async removeOrphans(): Promise<void> {
    const { store } = this.options;
    const targets = new Set([...this.links.inNamespace(MULTICLUSTER_NAMESPACE)].map((link) => link.metadata.name));
    const { items: mirrors } = await store.list('Service', { labelSelector: `${MIRROR_LABELS.mirroredService}=true` });
    const { items: slices } = await store.list('EndpointSlice', { labelSelector: `${SLICE_MANAGED_BY_LABEL}=${LINK_CONTROLLER_NAME}` });
    const origins = [...mirrors.map((m) => m.metadata.labels?.[MIRROR_LABELS.clusterName]), ...slices.map((s) => s.metadata.labels?.[MIRROR_LABELS.remoteCluster])];
    const orphaned = new Set(origins.filter((c): c is string => c !== undefined && !targets.has(c)));
    for (const cluster of orphaned) await this.removeMirrorsOf(cluster);
  }

  private async reconcile(link: Link): Promise<void> {
    const { log } = this.options;
    if (link.metadata.namespace !== MULTICLUSTER_NAMESPACE) {
      return this.refuse(link, 'WrongNamespace', `Links are read only in namespace ${MULTICLUSTER_NAMESPACE}; this one does nothing`);
    }
    if (link.spec?.targetClusterName === this.options.cluster) {
      return this.refuse(link, 'LinkToSelf', `a cluster cannot link to itself (${this.options.cluster})`);
    }
    const target = link.metadata.name;
    const spec = JSON.stringify(link.spec);
    const current = this.running.get(target);
    if (current?.spec === spec) return;
    if (current) await current.controller.stop();
    const controller = new LinkController({ ...this.options, link });
    this.running.set(target, { controller, spec });
    log.info({ link: target, gateway: link.spec?.gatewayAddress }, current ? 'links: link changed; restarting its controller' : 'links: starting a link controller');
    await controller.start();
  }

  private async remove(target: string): Promise<void> {
    const current = this.running.get(target);
    if (!current) return;
    this.running.delete(target);
    await current.controller.stop();
    await this.removeMirrorsOf(target);
  }

  private async removeMirrorsOf(cluster: string): Promise<void> {
    const removed = await removeMirrors(this.options.store, cluster);
    this.options.log.info({ link: cluster, removed }, 'links: link gone; removed its mirrors');
  }

  /** Says in the Link's status why it does nothing (once). */
  private async refuse(link: Link, reason: string, message: string): Promise<void> {
    const synced = link.status?.conditions?.find((c) => c.type === 'Synced');
    if (synced?.reason === reason) return;
    const now = new Date().toISOString();
    const status: LinkStatus = {
      conditions: [{ type: 'Synced', status: 'False', reason, message, lastTransitionTime: now }],
      services: 0,
      gateway: { consecutiveFailures: 0 },
    };
    this.options.log.warn({ link: `${link.metadata.namespace}/${link.metadata.name}`, reason }, `links: ${message}`);
    try {
      await this.options.store.updateStatus({ kind: 'Link', namespace: link.metadata.namespace, name: link.metadata.name }, status);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
}
