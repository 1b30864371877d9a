// Discovery's copy of the objects it answers from (Services, Pods, TrafficSplits, EndpointSlices, and
// the Multi-Cluster Services API's ServiceImports and ServiceExports), kept current by
// store watches, as a Kubernetes informer keeps its cache: one list, then every change as it
// commits. Answers are computed from this copy synchronously, so a change reaches the streams in
// the same turn it arrives.
import { MCS_SERVICE_NAME_LABEL } from '../../api/global.js';
import type { Pod, Service, ServiceExport, ServiceImport, TrafficSplit } from '../../api/kinds.js';
import { SLICE_SERVICE_LABEL, type EndpointSlice } from '../../api/kinds/endpointslice.js';
import type { Resource } from '../../api/types.js';
import { Informer } from '../../store/informer.js';
import type { Store } from '../../store/store.js';

export const CACHED_KINDS = ['Service', 'Pod', 'TrafficSplit', 'EndpointSlice', 'ServiceImport', 'ServiceExport'] as const;
export type CachedKind = (typeof CACHED_KINDS)[number];

/** One object changed; `previous` is absent for a new object, `current` for a deleted one. */
export interface CacheChange {
  kind: CachedKind;
  namespace: string;
  name: string;
  previous?: Resource;
  current?: Resource;
}

/** What computing an answer reads. */
export interface ClusterObjects {
  service(namespace: string, name: string): Service | undefined;
  /** The pods of a namespace, in no particular order. */
  pods(namespace: string): Iterable<Pod>;
  /** The pods of a namespace carrying every label of `selector` (a Service's), in no particular order. */
  selectedPods(namespace: string, selector: Record<string, string>): Iterable<Pod>;
  pod(namespace: string, name: string): Pod | undefined;
  services(namespace: string): Iterable<Service>;
  splits(namespace: string): Iterable<TrafficSplit>;
  /** The EndpointSlices labelled as the service's (`kubernetes.io/service-name`). */
  endpointSlices(namespace: string, service: string): Iterable<EndpointSlice>;
  /** The EndpointSlices of the clusterset service's members (`multicluster.kubernetes.io/service-name`). */
  clustersetSlices(namespace: string, service: string): Iterable<EndpointSlice>;
  serviceImport(namespace: string, name: string): ServiceImport | undefined;
  serviceExport(namespace: string, name: string): ServiceExport | undefined;
}

/** The two labels a slice names its service by: the cluster-local one, and the clusterset's. */
const SLICE_INDEXES = [SLICE_SERVICE_LABEL, MCS_SERVICE_NAME_LABEL] as const;
type SliceIndex = (typeof SLICE_INDEXES)[number];

export interface ResourceCacheOptions {
  /** Called for each change, after the cache holds it. */
  onChange: (change: CacheChange) => void;
  /** Called after the cache was listed again (a watch ended): everything may have changed. */
  onResync: () => void;
  warn: (message: string) => void;
}

export class ResourceCache implements ClusterObjects {
  private readonly informers: Map<CachedKind, Informer>;
  /** Per service-name label: EndpointSlices by `namespace/service` (the label's value), then by name. */
  private slicesByService = new Map<SliceIndex, Map<string, Map<string, EndpointSlice>>>();
  /**
   * Pod names by namespace, then by label (`key=value`): a Service's pods are found among those
   * of one of its labels, not by matching every pod of the namespace.
   */
  private podsByLabel = new Map<string, Map<string, Set<string>>>();
  private latestVersion = 0;
  /** Changes are passed on once every kind is listed: until then nothing has been computed from them. */
  private started = false;

  constructor(
    store: Store,
    private readonly options: ResourceCacheOptions,
  ) {
    this.informers = new Map(
      CACHED_KINDS.map((kind) => [
        kind,
        new Informer({
          store,
          kind,
          onChange: (previous, current) => this.apply(kind, previous, current),
          onResync: () => {
            if (this.started) options.onResync();
          },
          warn: (message) => options.warn(`discovery: ${message}`),
        }),
      ]),
    );
  }

  /** Lists every cached kind and starts watching; resolves once the cache is filled. */
  async start(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    for (const informer of this.informers.values()) this.latestVersion = Math.max(this.latestVersion, Number(informer.resourceVersion));
    this.started = true;
  }

  stop(): void {
    for (const informer of this.informers.values()) informer.stop();
  }

  /** The store's resourceVersion of the latest change the cache holds. */
  get version(): string {
    return String(this.latestVersion);
  }

  service(namespace: string, name: string): Service | undefined {
    return this.informers.get('Service')!.get(namespace, name) as Service | undefined;
  }

  pod(namespace: string, name: string): Pod | undefined {
    return this.informers.get('Pod')!.get(namespace, name) as Pod | undefined;
  }

  services(namespace: string): Iterable<Service> {
    return this.inNamespace('Service', namespace) as Iterable<Service>;
  }

  pods(namespace: string): Iterable<Pod> {
    return this.inNamespace('Pod', namespace) as Iterable<Pod>;
  }

  *selectedPods(namespace: string, selector: Record<string, string>): Iterable<Pod> {
    const byLabel = this.podsByLabel.get(namespace);
    const terms = Object.entries(selector);
    if (!byLabel || terms.length === 0) return;
    let fewest: Set<string> | undefined;
    for (const [key, value] of terms) {
      const names = byLabel.get(labelKey(key, value));
      if (!names) return;
      if (!fewest || names.size < fewest.size) fewest = names;
    }
    for (const name of fewest!) {
      const pod = this.pod(namespace, name);
      if (pod && terms.every(([key, value]) => pod.metadata.labels?.[key] === value)) yield pod;
    }
  }

  splits(namespace: string): Iterable<TrafficSplit> {
    return this.inNamespace('TrafficSplit', namespace) as Iterable<TrafficSplit>;
  }

  endpointSlices(namespace: string, service: string): Iterable<EndpointSlice> {
    return this.slicesByService.get(SLICE_SERVICE_LABEL)?.get(`${namespace}/${service}`)?.values() ?? [];
  }

  clustersetSlices(namespace: string, service: string): Iterable<EndpointSlice> {
    return this.slicesByService.get(MCS_SERVICE_NAME_LABEL)?.get(`${namespace}/${service}`)?.values() ?? [];
  }

  serviceImport(namespace: string, name: string): ServiceImport | undefined {
    return this.informers.get('ServiceImport')!.get(namespace, name) as ServiceImport | undefined;
  }

  serviceExport(namespace: string, name: string): ServiceExport | undefined {
    return this.informers.get('ServiceExport')!.get(namespace, name) as ServiceExport | undefined;
  }

  /** Every service, in every namespace. */
  *allServices(): Iterable<Service> {
    yield* this.everything('Service') as Iterable<Service>;
  }

  /** Every ServiceImport, in every namespace. */
  *allServiceImports(): Iterable<ServiceImport> {
    yield* this.everything('ServiceImport') as Iterable<ServiceImport>;
  }

  private everything(kind: CachedKind): Iterable<Resource> {
    return this.informers.get(kind)!.values();
  }

  private inNamespace(kind: CachedKind, namespace: string): Iterable<Resource> {
    return this.informers.get(kind)!.inNamespace(namespace);
  }

  private apply(kind: CachedKind, previous: Resource | undefined, current: Resource | undefined): void {
    const object = (current ?? previous)!;
    if (kind === 'EndpointSlice') {
      if (previous) this.indexSlice(previous as EndpointSlice, false);
      if (current) this.indexSlice(current as EndpointSlice, true);
    }
    if (kind === 'Pod') {
      if (previous) this.indexPod(previous, false);
      if (current) this.indexPod(current, true);
    }
    this.latestVersion = Math.max(this.latestVersion, Number(object.metadata.resourceVersion ?? 0));
    if (this.started) this.options.onChange({ kind, namespace: object.metadata.namespace ?? '', name: object.metadata.name, previous, current });
  }

  private indexSlice(slice: EndpointSlice, present: boolean): void {
    for (const label of SLICE_INDEXES) {
      const service = slice.metadata.labels?.[label];
      if (service === undefined) continue;
      const key = `${slice.metadata.namespace ?? ''}/${service}`;
      let byService = this.slicesByService.get(label);
      if (!byService) this.slicesByService.set(label, (byService = new Map<string, Map<string, EndpointSlice>>()));
      let slices = byService.get(key);
      if (present) {
        if (!slices) byService.set(key, (slices = new Map<string, EndpointSlice>()));
        slices.set(slice.metadata.name, slice);
      } else if (slices?.delete(slice.metadata.name) && slices.size === 0) {
        byService.delete(key);
      }
    }
  }

  private indexPod(pod: Resource, present: boolean): void {
    const namespace = pod.metadata.namespace ?? '';
    let byLabel = this.podsByLabel.get(namespace);
    if (!byLabel) {
      if (!present) return;
      this.podsByLabel.set(namespace, (byLabel = new Map<string, Set<string>>()));
    }
    for (const [key, value] of Object.entries(pod.metadata.labels ?? {})) {
      const label = labelKey(key, value);
      let names = byLabel.get(label);
      if (present) {
        if (!names) byLabel.set(label, (names = new Set<string>()));
        names.add(pod.metadata.name);
      } else if (names?.delete(pod.metadata.name) && names.size === 0) {
        byLabel.delete(label);
      }
    }
    if (byLabel.size === 0) this.podsByLabel.delete(namespace);
  }
}

/** A label as an index key; a label key cannot hold '=', so the pair is unambiguous. */
function labelKey(key: string, value: string): string {
  return `${key}=${value}`;
}
