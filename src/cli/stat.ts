// `strait stat`: success rate, RPS, latency and connections per resource over a time window, from
// the proxies' metrics that each control plane collects — the table `linkerd viz stat` prints, plus
// one row per traffic-split backend and, with --all-clusters, every cluster's view side by side.
import type { Command } from 'commander';
import { parseDuration } from '../api/quantity.js';
import { resolveKind } from '../api/kinds.js';
import type { Pod } from '../api/kinds.js';
import type { Resource } from '../api/types.js';
import { AdminClient, AdminError } from '../control/admin-client.js';
import { podsOf, statRows, type StatKind, type StatRow, type TrafficFigures } from '../control/metrics/summary.js';
import { paths, readMesh, straitHome } from '../runtime/home.js';
import { CliError, globals, targetContext, UsageError, type ClusterClient } from './context.js';
import { wantsKubernetes, withKubeOptions } from './kube-context.js';
import { colour, table } from './output.js';

const STAT_KINDS: Readonly<Record<string, StatKind>> = {
  Deployment: 'deploy',
  StatefulSet: 'sts',
  Pod: 'pod',
  Service: 'svc',
  TrafficSplit: 'trafficsplit',
  Namespace: 'ns',
};

const FROM_KINDS = new Set(['Deployment', 'StatefulSet', 'Pod']);

interface StatOptions {
  allNamespaces?: boolean;
  from?: string;
  fromNamespace?: string;
  window: string;
  output?: string;
  allClusters?: boolean;
}

interface Query {
  kind: StatKind;
  /** The store's kind name, e.g. `Deployment`. */
  storeKind: string;
  names: string[];
  /** Undefined for all namespaces. */
  namespace: string | undefined;
  from?: { storeKind: string; name: string; namespace: string };
  windowSeconds: number;
}

interface ClusterResult {
  cluster: string;
  rows: StatRow[];
  /** Named targets this cluster does not have. */
  missing: string[];
  fromMissing: boolean;
  /** Pods whose proxy could not be read. */
  unreadable: string[];
}

export function registerStatCommand(program: Command): void {
  withKubeOptions(program.command('stat'))
    .description('traffic per resource from the proxies: success rate, RPS, latency p50/p95/p99, TCP connections (as linkerd viz stat)')
    .argument('<type>', 'deploy, sts, pod, svc, trafficsplit or ns (or kind/name)')
    .argument('[names...]', 'only these resources')
    .option('-A, --all-namespaces', 'every namespace')
    .option('--from <resource>', 'only traffic sent by this workload: deploy/NAME, sts/NAME or pod/NAME')
    .option('--from-namespace <ns>', 'the namespace of --from (default: the -n namespace)')
    .option('-t, --window <duration>', 'the time window, e.g. 30s, 1m, 10m', '1m')
    .option('-o, --output <format>', 'wide (adds bytes per second) or json')
    .option('--all-clusters', 'every cluster of the mesh, side by side, with a CLUSTER column')
    .action(async (type: string, names: string[], opts: StatOptions, cmd: Command) => {
      if (opts.output !== undefined && opts.output !== 'wide' && opts.output !== 'json') throw new UsageError(`unknown output format "${opts.output}"; use wide or json`);
      const g = globals(cmd);
      if (opts.allClusters && g.cluster !== undefined) throw new UsageError('--cluster and --all-clusters cannot be combined');
      const query = parseQuery(type, names, opts, g.namespace ?? 'default');
      const home = straitHome();
      if (opts.allClusters && wantsKubernetes(cmd)) throw new UsageError('--all-clusters reads the clusters of this machine\'s mesh; for a Kubernetes cluster use --context');
      const clusters: ClusterClient[] = opts.allClusters
        ? readMesh(home).clusters.map((c) => new AdminClient(paths.socket(home, c.name), c.name))
        : [(await targetContext(cmd)).client];
      if (clusters.length === 0) throw new CliError(`no clusters in ${home}; start some with: strait up --clusters cluster1,cluster2`);

      const settled = await Promise.allSettled(clusters.map((client) => collect(client, query)));
      const results: ClusterResult[] = [];
      let failed = false;
      for (const [i, s] of settled.entries()) {
        if (s.status === 'fulfilled') {
          results.push(s.value);
          continue;
        }
        const err = windowError(s.reason as Error, opts.window);
        if (clusters.length === 1) throw err;
        // One cluster down does not hide the others' figures.
        console.error(colour.bad('error: ') + `${clusters[i]!.cluster}: ${err.message}`);
        failed = true;
      }
      report(results, query, opts);
      if (failed) process.exitCode = 1;
    });
}

/** The table `strait stat TYPE NAMES… -n NAMESPACE` prints for one cluster, for commands that show it in passing. */
export async function statTableOf(client: ClusterClient, type: string, names: string[], namespace = 'default', window = '1m'): Promise<string> {
  const { rows } = await collect(client, parseQuery(type, names, { window }, namespace));
  return statTable(rows, { clusters: false, namespaces: false, wide: false });
}

function parseQuery(type: string, names: string[], opts: StatOptions, namespace: string): Query {
  const slash = type.indexOf('/');
  const def = resolveKind(slash < 0 ? type : type.slice(0, slash));
  const kind = STAT_KINDS[def.kind];
  if (!kind) throw new UsageError(`strait stat cannot show ${def.plural}; use one of: deploy, sts, pod, svc, trafficsplit, ns`);
  const wanted = slash < 0 ? names : [type.slice(slash + 1), ...names];
  if (opts.allNamespaces && wanted.length > 0 && kind !== 'ns') throw new UsageError('a resource cannot be named across all namespaces; drop -A or the names');
  const ms = parseDuration(opts.window);
  if (ms === undefined || ms <= 0) throw new UsageError(`--window "${opts.window}" is not a positive duration (use e.g. 30s, 1m or 10m)`);
  const query: Query = { kind, storeKind: def.kind, names: wanted, namespace: opts.allNamespaces ? undefined : namespace, windowSeconds: ms / 1000 };
  if (opts.from !== undefined) {
    const fromSlash = opts.from.indexOf('/');
    if (fromSlash <= 0 || fromSlash === opts.from.length - 1) throw new UsageError(`--from "${opts.from}" must be KIND/NAME, e.g. deploy/sleep`);
    const fromDef = resolveKind(opts.from.slice(0, fromSlash));
    if (!FROM_KINDS.has(fromDef.kind)) throw new UsageError(`--from must name a deployment, statefulset or pod, not a ${fromDef.singular}`);
    query.from = { storeKind: fromDef.kind, name: opts.from.slice(fromSlash + 1), namespace: opts.fromNamespace ?? namespace };
  } else if (opts.fromNamespace !== undefined) throw new UsageError('--from-namespace needs --from');
  return query;
}

/** The window was refused by the control plane: say so in terms of the flag. */
function windowError(err: Error, window: string): Error {
  if (err instanceof AdminError && err.status === 400) return new UsageError(`--window ${window}: ${err.message}`);
  return err;
}

async function collect(client: ClusterClient, query: Query): Promise<ClusterResult> {
  const [traffic, podList] = await Promise.all([client.stats(query.windowSeconds), client.list('Pod')]);
  const pods = podList.items as Pod[];
  const missing: string[] = [];
  let targets: Resource[];
  if (query.names.length > 0) {
    targets = [];
    for (const name of query.names) {
      const ref = query.kind === 'ns' ? { kind: query.storeKind, name } : { kind: query.storeKind, namespace: query.namespace, name };
      const found = await client.get(ref);
      if (found) targets.push(found);
      else missing.push(name);
    }
  } else {
    targets = (await client.list(query.storeKind, { namespace: query.kind === 'ns' ? undefined : query.namespace })).items;
  }
  let fromPods: Pod[] | undefined;
  let fromMissing = false;
  if (query.from) {
    const { storeKind, name, namespace } = query.from;
    const from = await client.get({ kind: storeKind, namespace, name });
    fromMissing = from === undefined;
    fromPods = !from ? [] : storeKind === 'Pod' ? [from as Pod] : podsOf(from, pods);
  }
  const unreadable = traffic.pods.filter((p) => p.error !== undefined).map((p) => `${p.namespace}/${p.pod}: ${p.error}`);
  const rows = statRows(query.kind, targets, { cluster: client.cluster, traffic, pods, fromPods });
  return { cluster: client.cluster, rows, missing, fromMissing, unreadable };
}

function report(results: ClusterResult[], query: Query, opts: StatOptions): void {
  const where = (c: string) => (query.kind === 'ns' || query.namespace === undefined ? `cluster ${c}` : `namespace "${query.namespace}" of cluster ${c}`);
  // Something named must exist somewhere: in one cluster, or in any of them with --all-clusters.
  if (query.from && results.length > 0 && results.every((r) => r.fromMissing)) {
    throw new CliError(`--from ${opts.from}: not found in namespace "${query.from.namespace}" of ${results.map((r) => r.cluster).join(', ')}`);
  }
  for (const name of query.names) {
    const absentIn = results.filter((r) => r.missing.includes(name));
    if (absentIn.length > 0 && absentIn.length === results.length) {
      console.error(`Error from server (NotFound): ${kindWord(query.kind)} "${name}" not found in ${absentIn.map((r) => where(r.cluster)).join(', ')}`);
      process.exitCode = 1;
    }
  }
  for (const r of results) {
    if (r.unreadable.length > 0) console.error(colour.warn('warning: ') + `${r.cluster}: could not read the proxy metrics of ${r.unreadable.length} pod(s): ${r.unreadable.join('; ')}`);
  }

  const clusterOrder = new Map(results.map((r, i) => [r.cluster, i]));
  const rows = results.flatMap((r) => r.rows);
  if (opts.allClusters) {
    // Each resource's rows from every cluster next to each other.
    rows.sort(
      (a, b) =>
        (a.namespace ?? '').localeCompare(b.namespace ?? '') ||
        a.name.localeCompare(b.name) ||
        (a.leaf ?? '').localeCompare(b.leaf ?? '') ||
        clusterOrder.get(a.cluster)! - clusterOrder.get(b.cluster)!,
    );
  }
  if (opts.output === 'json') {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  if (rows.length === 0) {
    if (query.names.length === 0) console.error(`No resources found${query.kind === 'ns' || query.namespace === undefined ? '' : ` in ${query.namespace} namespace`}.`);
    return;
  }
  console.log(statTable(rows, { clusters: opts.allClusters === true, namespaces: query.namespace === undefined && query.kind !== 'ns', wide: opts.output === 'wide' }));
}

function kindWord(kind: StatKind): string {
  return { deploy: 'deployments', sts: 'statefulsets', pod: 'pods', svc: 'services', trafficsplit: 'trafficsplits', ns: 'namespaces' }[kind];
}

/** The table, with Linkerd's columns and formats; `-` where nothing was counted. */
function statTable(rows: StatRow[], columns: { clusters: boolean; namespaces: boolean; wide: boolean }): string {
  const split = rows[0]?.kind === 'trafficsplit';
  const headers = [
    ...(columns.clusters ? ['CLUSTER'] : []),
    ...(columns.namespaces ? ['NAMESPACE'] : []),
    'NAME',
    ...(split ? ['APEX', 'LEAF', 'WEIGHT'] : ['MESHED']),
    'SUCCESS',
    'RPS',
    'LATENCY_P50',
    'LATENCY_P95',
    'LATENCY_P99',
    ...(split ? [] : ['TCP_CONN']),
    ...(columns.wide ? ['READ_BYTES/SEC', 'WRITE_BYTES/SEC'] : []),
  ];
  const body = rows.map((r) => {
    const f = r.figures;
    const http = f && f.responses > 0 ? f : undefined;
    return [
      ...(columns.clusters ? [r.cluster] : []),
      ...(columns.namespaces ? [r.namespace ?? ''] : []),
      r.name,
      ...(split ? [r.apex ?? '-', r.leaf ?? '-', r.weight === undefined ? '-' : String(r.weight)] : [r.meshed ? `${r.meshed.meshed}/${r.meshed.total}` : '-']),
      http?.successRate === undefined ? '-' : `${(http.successRate * 100).toFixed(2)}%`,
      http ? `${http.requestsPerSecond.toFixed(1)}rps` : '-',
      ...latencyCells(http),
      ...(split ? [] : [f ? String(f.tcpConnections) : '-']),
      ...(columns.wide ? [f ? `${f.readBytesPerSecond.toFixed(1)}B/s` : '-', f ? `${f.writeBytesPerSecond.toFixed(1)}B/s` : '-'] : []),
    ];
  });
  return table(headers, body);
}

function latencyCells(f: TrafficFigures | undefined): string[] {
  if (!f?.latencyMs) return ['-', '-', '-'];
  const { p50, p95, p99 } = f.latencyMs;
  return [p50, p95, p99].map(formatMs);
}

/** Whole milliseconds as Linkerd prints them, with a decimal below 10 ms so sub-millisecond calls do not all read 0ms. */
function formatMs(ms: number): string {
  return ms >= 10 ? `${Math.round(ms)}ms` : `${Number(ms.toFixed(1))}ms`;
}
