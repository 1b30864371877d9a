// Per-resource traffic figures from the pods' metric windows, with `linkerd viz stat`'s semantics:
// workloads, pods and namespaces are seen from the inbound side of their own pods; services and
// traffic-split backends from the outbound side of every client (by `dst_service`/`dst_backend`),
// so a mirrored service with no local pods still shows the calls sent to it. `--from` narrows
// any of them to what one workload's pods sent.
import type { Pod, TrafficSplit } from '../../api/kinds.js';
import type { Resource } from '../../api/types.js';
import { isMeshed } from '../../api/mesh.js';
import type { Labels } from './exposition.js';
import type { PodTraffic, TrafficWindow } from './history.js';
import { bucketsOf, histogramQuantile, mergeBuckets } from './quantile.js';

export type StatKind = 'deploy' | 'sts' | 'pod' | 'svc' | 'trafficsplit' | 'ns';

export interface TrafficFigures {
  /** Responses completed in the window. */
  responses: number;
  /** The share of them that succeeded, 0–1; undefined without responses. */
  successRate?: number;
  requestsPerSecond: number;
  /** Response latency quantiles in milliseconds; undefined without responses. */
  latencyMs?: { p50: number; p95: number; p99: number };
  /** Transport connections open now. */
  tcpConnections: number;
  readBytesPerSecond: number;
  writeBytesPerSecond: number;
}

export interface StatRow {
  cluster: string;
  kind: StatKind;
  /** Absent for namespaces. */
  namespace?: string;
  name: string;
  /** Running pods with a proxy, of the running pods (workloads, pods, namespaces). */
  meshed?: { meshed: number; total: number };
  /** For a traffic split: its apex service, this backend (the leaf) and the backend's weight. */
  apex?: string;
  leaf?: string;
  weight?: number;
  /** Undefined when nothing was counted in the window (printed as `-`, as Linkerd does). */
  figures?: TrafficFigures;
}

export interface StatInput {
  cluster: string;
  traffic: TrafficWindow;
  /** Every pod of the cluster: ownership and the MESHED column come from here. */
  pods: Pod[];
  /** Only traffic these pods sent counts (`--from`). */
  fromPods?: Pod[];
}

type LabelMatch = (labels: Labels) => boolean;

/** The first DNS label of a service name, as `dst_service` carries it. */
function shortName(service: string): string {
  const dot = service.indexOf('.');
  return dot === -1 ? service : service.slice(0, dot);
}

/** The pods a Deployment or StatefulSet controls (by owner reference, as Linkerd attributes them). */
export function podsOf(owner: Resource, pods: readonly Pod[]): Pod[] {
  const { namespace, name, uid } = owner.metadata;
  return pods.filter(
    (p) =>
      p.metadata.namespace === namespace &&
      (p.metadata.ownerReferences ?? []).some((r) => r.controller === true && ((r.kind === owner.kind && r.name === name && (!uid || !r.uid || r.uid === uid)) || ofDeploymentReplicaSet(owner, p, r))),
  );
}

/**
 * On Kubernetes a Deployment's pods belong to its ReplicaSets, which the deployment controller
 * names `<deployment>-<pod-template-hash>` and whose pods carry that hash as a label.
 */
function ofDeploymentReplicaSet(owner: Resource, pod: Pod, ref: { kind: string; name: string }): boolean {
  const hash = pod.metadata.labels?.['pod-template-hash'];
  return owner.kind === 'Deployment' && ref.kind === 'ReplicaSet' && hash !== undefined && ref.name === `${owner.metadata.name}-${hash}`;
}

function podsFor(kind: StatKind, target: Resource, pods: readonly Pod[]): Pod[] {
  switch (kind) {
    case 'pod':
      return pods.filter((p) => p.metadata.namespace === target.metadata.namespace && p.metadata.name === target.metadata.name);
    case 'ns':
      return pods.filter((p) => p.metadata.namespace === target.metadata.name);
    default:
      return podsOf(target, pods);
  }
}

function meshedCount(pods: readonly Pod[]): { meshed: number; total: number } {
  const running = pods.filter((p) => p.status?.phase === 'Running');
  return { meshed: running.filter(isMeshed).length, total: running.length };
}

/** Sums what a set of series counted: responses, latency buckets, connections and bytes. */
class Tally {
  private success = 0;
  private failure = 0;
  private rps = 0;
  private readonly buckets = new Map<number, number>();
  private tcp = 0;
  private read = 0;
  private write = 0;

  add(pod: PodTraffic, http: LabelMatch, tcp: LabelMatch): void {
    // Rates per pod, over the time its own history covers, then summed.
    const perSecond = pod.seconds > 0 ? 1 / pod.seconds : 0;
    for (const c of pod.counters) {
      if (c.metric === 'response_total' && http(c.labels)) {
        if (c.labels.classification === 'success') this.success += c.value;
        else this.failure += c.value;
        this.rps += c.value * perSecond;
      } else if (c.metric === 'tcp_read_bytes_total' && tcp(c.labels)) this.read += c.value * perSecond;
      else if (c.metric === 'tcp_write_bytes_total' && tcp(c.labels)) this.write += c.value * perSecond;
    }
    for (const h of pod.histograms) {
      if (h.metric === 'response_latency_ms' && http(h.labels)) mergeBuckets(this.buckets, [...h.buckets, { le: Infinity, count: h.count }]);
    }
    for (const g of pod.gauges) if (g.metric === 'tcp_open_connections' && tcp(g.labels)) this.tcp += g.value;
  }

  figures(): TrafficFigures | undefined {
    const responses = this.success + this.failure;
    if (responses === 0 && this.tcp === 0 && this.read === 0 && this.write === 0) return undefined;
    const buckets = bucketsOf(this.buckets);
    const quantile = (q: number) => histogramQuantile(q, buckets);
    const latency = responses > 0 ? { p50: quantile(0.5), p95: quantile(0.95), p99: quantile(0.99) } : undefined;
    return {
      responses,
      ...(responses > 0 ? { successRate: this.success / responses } : {}),
      requestsPerSecond: this.rps,
      ...(latency && Object.values(latency).every(Number.isFinite) ? { latencyMs: latency } : {}),
      tcpConnections: this.tcp,
      readBytesPerSecond: this.read,
      writeBytesPerSecond: this.write,
    };
  }
}

const inbound: LabelMatch = (l) => l.direction === 'inbound';
/** Inbound connections from clients, not the proxy's own connections to its app. */
const inboundConnections: LabelMatch = (l) => l.direction === 'inbound' && l.peer !== 'dst';
const outbound = (match: LabelMatch): LabelMatch => (l) => l.direction === 'outbound' && match(l);
/** Outbound connections to servers, not the app's connections to its proxy. */
const outboundConnections = (match: LabelMatch): LabelMatch => (l) => l.direction === 'outbound' && l.peer !== 'src' && match(l);

/**
 * One row per target (per backend for a traffic split). `targets` are objects of `kind`:
 * Deployments, StatefulSets, Pods, Services, TrafficSplits or Namespaces.
 */
export function statRows(kind: StatKind, targets: readonly Resource[], input: StatInput): StatRow[] {
  const trafficOf = new Map(input.traffic.pods.map((p) => [`${p.namespace}/${p.pod}`, p]));
  const windowsOf = (pods: readonly Pod[]) =>
    pods.map((p) => trafficOf.get(`${p.metadata.namespace}/${p.metadata.name}`)).filter((t): t is PodTraffic => t !== undefined);
  const clients = input.fromPods ? windowsOf(input.fromPods) : input.traffic.pods;
  const local = (l: Labels) => l.dst_cluster === undefined || l.dst_cluster === input.cluster;

  /** Figures of what `clients` sent to series matching `match`. */
  const sent = (match: LabelMatch): TrafficFigures | undefined => {
    const tally = new Tally();
    for (const pod of clients) tally.add(pod, outbound(match), outboundConnections(match));
    return tally.figures();
  };

  const rows: StatRow[] = [];
  for (const target of targets) {
    const { name, namespace } = target.metadata;
    const base = { cluster: input.cluster, kind, ...(kind === 'ns' ? {} : { namespace }), name };
    if (kind === 'svc') {
      const match: LabelMatch = (l) => l.dst_namespace === namespace && shortName(l.dst_backend ?? l.dst_service ?? '') === name;
      rows.push(withFigures(base, sent(match)));
    } else if (kind === 'trafficsplit') {
      const spec = (target as TrafficSplit).spec!;
      const apex = shortName(spec.service);
      for (const backend of spec.backends) {
        const leaf = shortName(backend.service);
        const match: LabelMatch = (l) =>
          l.dst_namespace === namespace && shortName(l.dst_service ?? '') === apex && shortName(l.dst_backend ?? l.dst_service ?? '') === leaf;
        rows.push(withFigures({ ...base, apex, leaf, weight: backend.weight }, sent(match)));
      }
    } else {
      const pods = podsFor(kind, target, input.pods);
      const meshed = meshedCount(pods);
      if (input.fromPods) {
        // What the senders' proxies counted towards these pods, as Linkerd's --from does.
        const podNamespace = kind === 'ns' ? name : namespace;
        const names = new Set(pods.map((p) => p.metadata.name));
        const match: LabelMatch = (l) => local(l) && (l.dst_namespace ?? podNamespace) === podNamespace && l.dst_pod !== undefined && names.has(l.dst_pod);
        rows.push(withFigures({ ...base, meshed }, sent(match)));
      } else {
        const tally = new Tally();
        for (const pod of windowsOf(pods)) tally.add(pod, inbound, inboundConnections);
        rows.push(withFigures({ ...base, meshed }, tally.figures()));
      }
    }
  }
  return rows;
}

function withFigures(row: StatRow, figures: TrafficFigures | undefined): StatRow {
  return figures ? { ...row, figures } : row;
}
