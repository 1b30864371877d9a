// The answers discovery is currently streaming, one view per distinct destination (or pod), shared
// by every stream that watches it, and recomputed only when a change can affect it: a Service,
// ServiceImport, ServiceExport or TrafficSplit it names, a Pod one of its services selects, or an
// EndpointSlice of one of its services (by either service-name label: a global or clusterset
// member's). A pod change costs a selector match per watched service of its namespace, never a
// pass over every service.
import { equals } from '@bufbuild/protobuf';
import { InboundResponseSchema, type InboundResponse } from '../../api/gen/strait/discovery/v1/discovery_pb.js';
import type { Pod, TrafficSplit } from '../../api/kinds.js';
import { MCS_SERVICE_NAME_LABEL } from '../../api/global.js';
import { SLICE_SERVICE_LABEL } from '../../api/kinds/endpointslice.js';
import type { CacheChange, ClusterObjects } from './cache.js';
import { computeDestination, computeInbound, selectsPod, splitRoot, type ClusterContext, type DestinationState } from './compute.js';
import { heldOf, isEmptyUpdate, updateFrom } from './delta.js';
import { targetFqdn, type ServiceTarget } from './names.js';

/** The current answer for one target, and who wants to hear when it changes. */
export class View<Target, State> {
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly target: Target,
    public state: State,
    /** The store's resourceVersion at the latest change of `state`. */
    public version: string,
  ) {}

  /** Calls `listener` after each change; returns a function that unsubscribes. */
  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get watched(): boolean {
    return this.listeners.size > 0;
  }

  set(state: State, version: string): void {
    this.state = state;
    this.version = version;
    for (const listener of this.listeners) listener();
  }
}

export type DestinationView = View<ServiceTarget, DestinationState>;
/** A pod's inbound configuration (without its version); undefined while the pod does not exist. */
export type InboundView = View<{ namespace: string; pod: string }, InboundResponse | undefined>;

/** A subscription to a view; `release` it when the stream ends (the last release drops the view). */
export interface Lease<V> {
  view: V;
  release(): void;
}

/** What views read: the cluster's objects and the store version they are at. */
export type VersionedObjects = ClusterObjects & { readonly version: string };

export class DiscoveryViews {
  private readonly destinations = new Map<string, DestinationView>();
  /** Namespace → service name → the destination views that name the service (as root or backend). */
  private readonly byService = new Map<string, Map<string, Set<DestinationView>>>();
  /** `namespace/pod` → its inbound view. */
  private readonly inbound = new Map<string, InboundView>();

  constructor(
    private readonly objects: VersionedObjects,
    private readonly ctx: ClusterContext,
  ) {}

  /** The view of `target`, shared with every other stream watching it. */
  watchDestination(target: ServiceTarget, listener: () => void): Lease<DestinationView> {
    const key = `${targetFqdn(target)}:${target.port ?? ''}`;
    let view = this.destinations.get(key);
    if (!view) {
      view = new View(target, computeDestination(this.objects, target, this.ctx), this.objects.version);
      this.destinations.set(key, view);
      this.index(view, [], view.state.services);
    }
    return this.lease(view, listener, () => {
      this.destinations.delete(key);
      this.index(view, view.state.services, []);
    });
  }

  /** The view of a pod's inbound configuration. */
  watchInbound(namespace: string, pod: string, listener: () => void): Lease<InboundView> {
    const key = `${namespace}/${pod}`;
    let view = this.inbound.get(key);
    if (!view) {
      view = new View({ namespace, pod }, computeInbound(this.objects, namespace, pod, this.ctx), this.objects.version);
      this.inbound.set(key, view);
    }
    return this.lease(view, listener, () => this.inbound.delete(key));
  }

  private lease<V extends View<unknown, unknown>>(view: V, listener: () => void, drop: () => void): Lease<V> {
    const unlisten = view.listen(listener);
    let released = false;
    return {
      view,
      release: () => {
        if (released) return;
        released = true;
        unlisten();
        if (!view.watched) drop();
      },
    };
  }

  /** How many distinct destinations are being streamed. */
  get destinationCount(): number {
    return this.destinations.size;
  }

  /** Recomputes the views a change can affect. */
  onChange(change: CacheChange): void {
    const { namespace, name } = change;
    const affected = new Set<DestinationView>();
    const naming = (service: string | undefined) => {
      if (service === undefined) return;
      for (const view of this.byService.get(namespace)?.get(service) ?? []) affected.add(view);
    };
    switch (change.kind) {
      case 'ServiceImport':
      case 'ServiceExport':
        naming(name);
        break;
      case 'Service':
        naming(name);
        // Which service selects a pod decides the protocol of its inbound ports.
        for (const view of this.inbound.values()) if (view.target.namespace === namespace) this.refreshInbound(view);
        break;
      case 'TrafficSplit':
        for (const split of [change.previous, change.current]) if (split) naming(splitRoot(split as TrafficSplit));
        break;
      case 'EndpointSlice':
        for (const slice of [change.previous, change.current]) {
          naming(slice?.metadata.labels?.[SLICE_SERVICE_LABEL]);
          naming(slice?.metadata.labels?.[MCS_SERVICE_NAME_LABEL]);
        }
        break;
      case 'Pod': {
        const pods = [change.previous, change.current].filter((p): p is Pod => p !== undefined);
        for (const [service, views] of this.byService.get(namespace) ?? []) {
          const object = this.objects.service(namespace, service);
          if (object && pods.some((pod) => selectsPod(object, pod))) for (const view of views) affected.add(view);
        }
        const inbound = this.inbound.get(`${namespace}/${name}`);
        if (inbound) this.refreshInbound(inbound);
        break;
      }
    }
    for (const view of affected) this.refreshDestination(view);
  }

  /** After the cache was listed again: every view may have changed. */
  onResync(): void {
    for (const view of this.destinations.values()) this.refreshDestination(view);
    for (const view of this.inbound.values()) this.refreshInbound(view);
  }

  private refreshDestination(view: DestinationView): void {
    const next = computeDestination(this.objects, view.target, this.ctx);
    if (isEmptyUpdate(updateFrom(heldOf(view.state), next))) return;
    this.index(view, view.state.services, next.services);
    view.set(next, this.objects.version);
  }

  private refreshInbound(view: InboundView): void {
    const next = computeInbound(this.objects, view.target.namespace, view.target.pod, this.ctx);
    const before = view.state;
    if (before === next || (before && next && equals(InboundResponseSchema, before, next))) return;
    view.set(next, this.objects.version);
  }

  /** Moves `view` from the services it depended on to the ones it depends on now. */
  private index(view: DestinationView, before: string[], after: string[]): void {
    for (const key of before) {
      if (after.includes(key)) continue;
      const [namespace, name] = splitKey(key);
      const names = this.byService.get(namespace);
      const views = names?.get(name);
      views?.delete(view);
      if (views?.size === 0) names!.delete(name);
      if (names?.size === 0) this.byService.delete(namespace);
    }
    for (const key of after) {
      if (before.includes(key)) continue;
      const [namespace, name] = splitKey(key);
      let names = this.byService.get(namespace);
      if (!names) this.byService.set(namespace, (names = new Map<string, Set<DestinationView>>()));
      let views = names.get(name);
      if (!views) names.set(name, (views = new Set()));
      views.add(view);
    }
  }
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
