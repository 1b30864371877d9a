// The control plane's discovery service (strait.discovery.v1.Discovery): streams to each proxy the
// destinations it resolves and its pod's inbound configuration, computed from the store and pushed
// on every change that matters. Callers authenticate with their workload certificate.
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { Discovery, type InboundResponse, type ResolveResponse } from '../../api/gen/strait/discovery/v1/discovery_pb.js';
import { NOT_A_SERVICE_NAME_METADATA } from '../../api/mesh.js';
import type { Store } from '../../store/store.js';
import { ResourceCache, type ClusterObjects } from './cache.js';
import type { ClusterContext } from './compute.js';
import { heldFromResume, heldOf, isEmptyUpdate, updateFrom, type Held } from './delta.js';
import { listServices, type ListOptions, type ServiceListing } from './listing.js';
import { DEFAULT_CLUSTER_DOMAIN, parseServiceName } from './names.js';
import { authenticatedCaller } from './peer.js';
import { DiscoveryViews } from './views.js';

export { peerContextValues } from './peer.js';

export interface DiscoveryOptions {
  store: Store;
  /** This cluster's name, given to every endpoint. */
  cluster: string;
  /** The mesh's trust domain: callers must be in it; endpoint identities are in it. */
  trustDomain: string;
  /** Default `cluster.local`. */
  clusterDomain?: string;
  /** This cluster's region, which failover preferences may name. */
  region?: string;
  /** Where problems go (a store watch that ended). Default: process.emitWarning. */
  warn?: (message: string) => void;
}

/** The running service behind the routes. */
export interface DiscoveryService {
  /** Settles once discovery has read the store; requests wait for it. */
  readonly ready: Promise<void>;
  /** How many distinct destinations are being streamed. */
  readonly destinationCount: number;
  /** Every service callers here can name, with every backend, its state and tier (`strait service list`). */
  listServices(options?: ListOptions): ServiceListing;
  /** Stops watching the store and ends every stream (callers then reconnect elsewhere or later). */
  close(): void;
}

/**
 * Serves Discovery on `router`, reading `options.store`. The server must be HTTP/2 with TLS that
 * requests client certificates and passes them on: `connectNodeAdapter({ routes, contextValues:
 * peerContextValues })` with `serverTlsOptions(identity, { clientCert: 'request' })`.
 */
export function registerDiscovery(router: ConnectRouter, options: DiscoveryOptions): DiscoveryService {
  const ctx: ClusterContext = {
    cluster: options.cluster,
    trustDomain: options.trustDomain,
    clusterDomain: options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
    ...(options.region ? { region: options.region } : {}),
  };
  const warn = options.warn ?? ((message: string) => process.emitWarning(message));
  // The cache calls the views only after start(), by which time they exist.
  const cache: ResourceCache = new ResourceCache(options.store, { onChange: (c) => views.onChange(c), onResync: () => views.onResync(), warn });
  const views = new DiscoveryViews(cache, ctx);
  const closing = new AbortController();
  const ready = cache.start();
  ready.catch((err: unknown) => warn(`discovery: cannot read the store: ${(err as Error).message}`));
  router.service(Discovery, discoveryImpl(cache, views, ctx, ready, closing.signal));
  return {
    ready,
    get destinationCount() {
      return views.destinationCount;
    },
    listServices: (listOptions) => listServices(cache, ctx, listOptions),
    close() {
      closing.abort();
      cache.stop();
    },
  };
}

function discoveryImpl(objects: ClusterObjects, views: DiscoveryViews, ctx: ClusterContext, ready: Promise<void>, closing: AbortSignal): ServiceImpl<typeof Discovery> {
  const start = async (handler: HandlerContext) => {
    const caller = authenticatedCaller(handler, ctx.trustDomain);
    if (closing.aborted) throw new ConnectError('discovery is shutting down', Code.Unavailable);
    try {
      await ready;
    } catch (err) {
      throw new ConnectError(`discovery cannot read the store: ${(err as Error).message}`, Code.Unavailable);
    }
    return { caller, signal: AbortSignal.any([handler.signal, closing]) };
  };

  return {
    async *resolve(req, handler): AsyncGenerator<ResolveResponse> {
      const { caller, signal } = await start(handler);
      const parsed = parseServiceName(req.name, caller.namespace, ctx.clusterDomain);
      if ('problem' in parsed) throw new ConnectError(parsed.problem, Code.InvalidArgument, { [NOT_A_SERVICE_NAME_METADATA]: 'true' });
      const changes = new ChangeSignal();
      const lease = views.watchDestination(parsed.target, () => changes.notify());
      try {
        let held: Held | undefined = req.resume ? heldFromResume(req.resume) : undefined;
        let first = true;
        while (!signal.aborted) {
          const { state, version } = lease.view;
          const update = updateFrom(held, state);
          // The first answer goes out even when it changes nothing: it tells the caller it is current.
          if (first || !isEmptyUpdate(update)) {
            update.version = version;
            yield update;
          }
          first = false;
          held = heldOf(state);
          if (lease.view.state === state) await changes.next(signal);
        }
      } finally {
        lease.release();
      }
    },

    async *inbound(req, handler): AsyncGenerator<InboundResponse> {
      const { caller, signal } = await start(handler);
      const namespace = req.namespace || caller.namespace;
      const where = `pod ${namespace}/${req.pod}`;
      if (req.pod === '') throw new ConnectError('the request names no pod', Code.InvalidArgument);
      if (namespace !== caller.namespace) throw new ConnectError(`${caller.spiffeId} may not read the inbound configuration of ${where}: another namespace`, Code.PermissionDenied);
      const changes = new ChangeSignal();
      const lease = views.watchInbound(namespace, req.pod, () => changes.notify());
      try {
        while (!signal.aborted) {
          const { state, version } = lease.view;
          if (!state) throw new ConnectError(`${where} does not exist`, Code.NotFound);
          const serviceAccount = objects.pod(namespace, req.pod)?.spec?.serviceAccountName ?? 'default';
          if (serviceAccount !== caller.serviceAccount) {
            throw new ConnectError(`${caller.spiffeId} may not read the inbound configuration of ${where}, which runs as service account ${serviceAccount}`, Code.PermissionDenied);
          }
          yield { ...state, version };
          if (lease.view.state === state) await changes.next(signal);
        }
      } finally {
        lease.release();
      }
    },
  };
}

/** Wakes a stream when its view changed; changes while it was busy sending are not lost. */
export class ChangeSignal {
  private pending = false;
  private wake: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    this.wake?.();
  }

  /** Resolves at the next change since the last call (at once if one happened meanwhile), or on abort. */
  async next(signal: AbortSignal): Promise<void> {
    if (!this.pending && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done);
      });
    }
    this.pending = false;
  }
}
