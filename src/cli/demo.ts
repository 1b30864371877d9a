// `strait demo`: a guide's multi-cluster scenario on this machine in one command. It makes the
// clusters and their PKI, applies the guide's manifests from examples/, links the clusters, calls
// across them from a client pod, shows the answers and the traffic figures, and then takes down
// everything it made (or, with --keep, leaves it running to explore).
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { isAbsolute, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { AFFINITY_ANNOTATION } from '../api/global.js';
import { resolveKind, type Deployment, type Pod } from '../api/kinds.js';
import { formatSelector } from '../api/labels.js';
import type { Resource } from '../api/types.js';
import { AdminClient } from '../control/admin-client.js';
import type { ListedService } from '../control/discovery/listing.js';
import { clusterDir, paths, readMesh, straitHome } from '../runtime/home.js';
import { podEnvironment } from '../runtime/pods.js';
import { CliError, UsageError } from './context.js';
import { connectClusters } from './link.js';
import { readManifests } from './manifests.js';
import { colour, spinner } from './output.js';
import { findPod } from './pod-commands.js';
import { deploymentFor, qualifiedName } from './resource-commands.js';
import { statTableOf } from './stat.js';

/** One backend that can answer the demo's calls: the pods of a Deployment in one cluster. */
interface Backend {
  /** What the answers and the summary call it: a version, or its cluster. */
  label: string;
  cluster: string;
  deployment: string;
}

/**
 * What is applied to a cluster: a file under examples/ (with a selector, only the objects it picks,
 * as `apply -l` does), or objects a command makes, shown as that command.
 */
type Manifest = { cluster: string } & ({ file: string; selector?: string } | { made: string; objects: Resource[] });

/** A round of calls from the client; a later one may first change a Service and wait until its cluster sees it. */
interface Round {
  calls: number;
  /** The labels of the backends that may answer; an answer from any other fails the demo. */
  expect: string[];
  /** Set before the calls, then awaited until `service list` in that cluster prefers only the backends of `preferred`. */
  annotate?: { cluster: string; service: string; key: string; value: string; preferred: string[] };
}

/** Everything a scenario is; the steps that play it are the same for every one. */
interface Scenario {
  /** One line on what it shows. */
  title: string;
  /** The guide the manifests come from. */
  source: string;
  /** Made by `up`; every pair is linked both ways by `connect`. */
  clusters: string[];
  /** Namespace sameness (`up --sameness`): namesake Services in linked clusters are one service. */
  sameness?: boolean;
  namespace: string;
  /** Applied in order within a cluster; the clusters are done side by side. */
  manifests: Manifest[];
  /** Deployments whose pods must all be ready before the calls. */
  deployments: { cluster: string; name: string }[];
  /** Before the calls: `service` in `cluster` must have an active backend in each of `from` (its discovery's view). */
  reach: { cluster: string; service: string; from: string[] }[];
  /** Where the calls are made from, and to what. */
  client: { cluster: string; pod: string; url: string };
  /** The pod an answer says served it. */
  podOf: (body: string) => string | undefined;
  /** Print each answer as the app wrote it (one short line); otherwise its pod and backend. */
  printBody?: boolean;
  backends: Backend[];
  rounds: Round[];
  /** `strait stat` tables shown after the calls. */
  stats: { cluster: string; type: string; names: string[] }[];
  /** Commands to explore further, without the leading `strait`. */
  explore: string[];
}

/** The namespace, made in `cluster` with the labels or annotations that mesh its pods. */
function namespaceIn(cluster: string, name: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> }): Manifest {
  const pairs = Object.entries({ ...meta.labels, ...meta.annotations }).map(([k, v]) => `${k}=${v}`);
  return { cluster, made: `namespace ${name} (${pairs.join(', ')})`, objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...meta } }] };
}

/** The pod named by a JSON answer's `podname`, as the bookinfo reviews and userlist apps write it. */
function podnameOf(body: string): string | undefined {
  try {
    const { podname } = JSON.parse(body) as { podname?: unknown };
    return typeof podname === 'string' ? podname : undefined;
  } catch {
    return undefined;
  }
}

const ISTIO_CLUSTERS = ['cluster1', 'cluster2', 'cluster3'];
const CILIUM_CLUSTERS = ['cluster1', 'cluster2'];
const CURL_CLIENT = 'curltest';

const SCENARIOS: Readonly<Record<string, Scenario>> = {
  linkerd: {
    title: "a service exported from cluster1, mirrored into cluster2 and split 50/50 with cluster2's own",
    source: 'the Linkerd multi-cluster guide',
    clusters: ['cluster1', 'cluster2'],
    namespace: 'default',
    manifests: [
      { cluster: 'cluster1', file: 'linkerd/helloworld-cluster1.yaml' },
      { cluster: 'cluster2', file: 'linkerd/helloworld-cluster2.yaml' },
    ],
    deployments: [
      { cluster: 'cluster1', name: 'helloworld-v1' },
      { cluster: 'cluster2', name: 'helloworld-v2' },
      { cluster: 'cluster2', name: 'sleep' },
    ],
    reach: [{ cluster: 'cluster2', service: 'helloworld-cluster1', from: ['cluster1'] }],
    client: { cluster: 'cluster2', pod: 'deploy/sleep', url: 'http://helloworld:5000/hello' },
    podOf: (body) => /^Hello version: v\d+, instance: (\S+)/.exec(body)?.[1],
    printBody: true,
    backends: [
      { label: 'v1', cluster: 'cluster1', deployment: 'helloworld-v1' },
      { label: 'v2', cluster: 'cluster2', deployment: 'helloworld-v2' },
    ],
    rounds: [{ calls: 20, expect: ['v1', 'v2'] }],
    stats: [{ cluster: 'cluster2', type: 'svc', names: ['helloworld', 'helloworld-cluster1'] }],
    explore: [
      'get svc --cluster cluster2',
      'exec deploy/sleep --cluster cluster2 -- curl -s http://helloworld:5000/hello',
      'stat svc --cluster cluster2',
      'stat trafficsplit --cluster cluster2',
      'stat deploy --all-clusters',
      'gateways --cluster cluster2',
      'remote-clusters --cluster cluster2',
      'check --multicluster --cluster cluster2',
    ],
  },
  istio: {
    title: 'one reviews service across three clusters, v1 in cluster1, v2 in cluster2 and v3 in cluster3, merged by namespace sameness',
    source: 'the Istio multi-cluster guide',
    clusters: ISTIO_CLUSTERS,
    sameness: true,
    namespace: 'sample',
    manifests: ISTIO_CLUSTERS.flatMap((cluster, i): Manifest[] => [
      namespaceIn(cluster, 'sample', { labels: { 'istio-injection': 'enabled' } }),
      // As the guide applies them: `-l service=reviews`, `-l account=reviews`, `-l app=reviews,version=vN`.
      ...['service=reviews', 'account=reviews', `app=reviews,version=v${i + 1}`].map((selector) => ({ cluster, file: 'istio/bookinfo.yaml', selector })),
    ]).concat({ cluster: 'cluster3', file: 'istio/sleep.yaml' }),
    deployments: [
      ...ISTIO_CLUSTERS.map((cluster, i) => ({ cluster, name: `reviews-v${i + 1}` })),
      { cluster: 'cluster3', name: 'sleep' },
    ],
    reach: [{ cluster: 'cluster3', service: 'reviews', from: ISTIO_CLUSTERS }],
    client: { cluster: 'cluster3', pod: 'deploy/sleep', url: 'http://reviews:9080/reviews/1' },
    podOf: podnameOf,
    backends: ISTIO_CLUSTERS.map((cluster, i) => ({ label: `v${i + 1}`, cluster, deployment: `reviews-v${i + 1}` })),
    rounds: [{ calls: 20, expect: ['v1', 'v2', 'v3'] }],
    stats: [{ cluster: 'cluster3', type: 'svc', names: ['reviews'] }],
    explore: [
      'remote-clusters --cluster cluster1',
      'service list --cluster cluster3 -n sample',
      'exec deploy/sleep --cluster cluster3 -n sample -- curl -s http://reviews:9080/reviews/1',
      'get pods --cluster cluster1 -n sample',
      'stat deploy --all-clusters -n sample',
      'gateways --cluster cluster3',
      'check --multicluster --cluster cluster3',
    ],
  },
  cilium: {
    title: 'a global userlist service in two clusters, then kept local with affinity',
    source: "the Cilium cluster-mesh blog's global service",
    clusters: CILIUM_CLUSTERS,
    namespace: 'song',
    manifests: CILIUM_CLUSTERS.flatMap((cluster): Manifest[] => [
      // Beyond the blog: the namespace's pods get the mesh's proxy.
      namespaceIn(cluster, 'song', { annotations: { 'linkerd.io/inject': 'enabled' } }),
      { cluster, file: 'cilium/userlist-deployment.yaml' },
      { cluster, file: 'cilium/userlist-svc.yaml' },
      {
        cluster,
        made: `strait create deploy ${CURL_CLIENT} --image=curlimages/curl -- sleep 365d`,
        objects: [deploymentFor(CURL_CLIENT, 'song', { image: 'curlimages/curl', replicas: '1' }, ['sleep', '365d'])],
      },
    ]),
    deployments: CILIUM_CLUSTERS.flatMap((cluster) => [{ cluster, name: 'userlist' }, { cluster, name: CURL_CLIENT }]),
    reach: [{ cluster: 'cluster1', service: 'userlist-svc', from: CILIUM_CLUSTERS }],
    client: { cluster: 'cluster1', pod: `deploy/${CURL_CLIENT}`, url: 'http://userlist-svc.song.svc:80/users/1' },
    podOf: podnameOf,
    backends: CILIUM_CLUSTERS.map((cluster) => ({ label: cluster, cluster, deployment: 'userlist' })),
    rounds: [
      { calls: 20, expect: CILIUM_CLUSTERS },
      { calls: 10, expect: ['cluster1'], annotate: { cluster: 'cluster1', service: 'userlist-svc', key: AFFINITY_ANNOTATION, value: 'local', preferred: ['cluster1'] } },
    ],
    stats: [{ cluster: 'cluster1', type: 'svc', names: ['userlist-svc'] }],
    explore: [
      'service list --cluster cluster1 -n song',
      `exec deploy/${CURL_CLIENT} --cluster cluster1 -n song -- curl -s http://userlist-svc.song.svc:80/users/1`,
      `annotate svc userlist-svc ${AFFINITY_ANNOTATION}=remote --overwrite --cluster cluster1 -n song`,
      `annotate svc userlist-svc ${AFFINITY_ANNOTATION}=none --overwrite --cluster cluster1 -n song`,
      'scale deploy/userlist --replicas 0 --cluster cluster1 -n song',
      'scale deploy/userlist --replicas 1 --cluster cluster1 -n song',
      'annotate svc userlist-svc service.cilium.io/shared=false --overwrite --cluster cluster2 -n song',
      'remote-clusters --cluster cluster1',
    ],
  },
};

const DEFAULT_SCENARIO = 'linkerd';
const READY_TIMEOUT_MS = 60_000;
const CALL_TIMEOUT_MS = 5_000;
/** Answers shown as their pod and backend: the pod's name in a column this wide. */
const POD_COLUMN = 32;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description("clusters on this machine running a guide's multi-cluster scenario (Linkerd's, Istio's or Cilium's), linked, with calls across them; cleaned up at the end unless --keep")
    .option('--scenario <name>', `which guide's scenario: ${Object.keys(SCENARIOS).join(', ')}`, DEFAULT_SCENARIO)
    .option('--keep', 'leave the clusters running to explore; stop them with `strait down`')
    .action(async (opts: { scenario: string; keep?: boolean }) => {
      const scenario = SCENARIOS[opts.scenario];
      if (!scenario) throw new UsageError(`--scenario: unknown scenario "${opts.scenario}"; the scenarios are: ${Object.keys(SCENARIOS).join(', ')}`);
      await runDemo(scenario, straitHome(), opts.keep === true);
    });
}

/** Plays a scenario in `home`, cleaning up after it (also on failure and Ctrl-C) unless `keep`. */
async function runDemo(scenario: Scenario, home: string, keep: boolean): Promise<void> {
  refuseExistingClusters(home);
  const before = homeEntries(home);
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (++signals === 1) return interrupt.abort();
    console.error(colour.warn('\ninterrupted again; stopping without cleaning up. ') + `Stop what runs with: strait down (state in ${shown(home)})`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    console.log(`${colour.bold('strait demo')}: ${scenario.title}, as in ${scenario.source}.`);
    await play(scenario, home, interrupt.signal);
    printNextSteps(scenario, home, keep);
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    throw new CliError(keep ? `interrupted; what the demo started keeps running. Stop it with: strait down (state in ${shown(home)})` : 'interrupted; everything the demo started was stopped and its state removed', 130);
  } finally {
    // Signals stay handled during the clean-up: a second Ctrl-C gets out at once, saying what is left.
    if (!keep) {
      await step('cleaning up', undefined, () => cleanUp(home, before, scenario.clusters), (stopped) =>
        `stopped ${stopped.length > 0 ? stopped.join(', ') : 'nothing'} and removed the state the demo made in ${shown(home)}`,
      );
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function play(scenario: Scenario, home: string, signal: AbortSignal): Promise<void> {
  const { clusters, namespace } = scenario;
  // Read and validated before anything is made: a bad manifest changes nothing.
  const manifests = await Promise.all(scenario.manifests.map(async (m) => ({ cluster: m.cluster, shown: shownManifest(m), objects: await manifestObjects(m, namespace) })));
  const { up } = await import('../runtime/up.js');
  await step(`creating clusters ${listed(clusters)}`, signal, (progress) => up(home, clusters, { progress, ...(scenario.sameness ? { settings: { sameness: true } } : {}) }), () =>
    `created clusters ${listed(clusters)}: a trust anchor, an issuer and a control plane each${scenario.sameness ? ', under namespace sameness' : ''}`,
  );
  const clients = new Map(clusters.map((name) => [name, new AdminClient(paths.socket(home, name), name)]));
  const client = (name: string) => clients.get(name)!;

  // Applied before linking: the pods start while the clusters connect. In order within a cluster (a namespace before what goes in it).
  const applied = await step('applying the manifests', signal, () =>
    Promise.all(clusters.map(async (cluster) => {
      const lines: string[] = [];
      for (const { shown, objects } of manifests.filter((m) => m.cluster === cluster)) {
        const results = await client(cluster).apply(objects);
        lines.push(`${cluster} ← ${shown}: ${results.map((r) => qualifiedName(resolveKind(r.object.kind), r.object.metadata.name)).join(', ')}`);
      }
      return lines;
    })),
  () => `applied the guide's manifests`);
  for (const line of applied.flat()) console.log(colour.dim(`    ${line}`));

  for (const [a, b] of pairs(clusters)) {
    await step(`connecting ${a} and ${b}`, signal, () => connectClusters(home, a, b), () => `connected ${a} ⇄ ${b}: each uses what the other exports, through its gateway`);
  }
  await step('starting pods', signal, (progress) => waitForDeployments(scenario, client, progress, signal), () =>
    `pods ready: ${scenario.deployments.map((d) => `${d.name} (${d.cluster})`).join(', ')}`,
  );
  for (const r of scenario.reach) {
    await step(`waiting until ${r.service} in ${r.cluster} has a ready backend in ${listed(r.from)}`, signal, (progress) => waitForReach(r, namespace, client(r.cluster), progress, signal), () =>
      `${r.service} in ${r.cluster} has ready backends in ${listed(r.from)}`,
    );
  }
  const proxy = await clientProxy(scenario, home, client(scenario.client.cluster));
  let pods = await backendPods(scenario, client);
  // A pod the demo has not seen (one restarted since) is looked up once more.
  const backendOf = async (pod: string) => pods.get(pod) ?? (pods = await backendPods(scenario, client)).get(pod);
  for (const [i, round] of scenario.rounds.entries()) {
    if (round.annotate) await annotateAndWait(round.annotate, namespace, client(round.annotate.cluster), signal);
    await callRound(scenario, round, proxy, backendOf, i === 0, signal);
  }
  for (const s of scenario.stats) {
    console.log(`\n${colour.bold(`$ strait stat ${s.type} ${s.names.join(' ')} --cluster ${s.cluster}${namespace === 'default' ? '' : ` -n ${namespace}`}`)}`);
    console.log(await statTableOf(client(s.cluster), s.type, s.names, namespace));
  }
}

/** How a manifest is shown in the demo's output. */
function shownManifest(m: Manifest): string {
  if ('made' in m) return m.made;
  return `examples/${m.file}${m.selector === undefined ? '' : ` -l ${m.selector}`}`;
}

/** A manifest's objects in the scenario's namespace, validated as `strait apply` validates them. */
function manifestObjects(m: Manifest, namespace: string): Promise<Resource[]> {
  if ('made' in m) return readManifests([], { documents: m.objects, namespace });
  return readManifests([join(examplesDir(), m.file)], { namespace, ...(m.selector === undefined ? {} : { selector: m.selector }) });
}

/** `a`, `a and b`, `a, b and c`. */
function listed(names: string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** Every pair of clusters, each once: the demo links them all (a full mesh, as the guides do). */
function pairs(names: string[]): [string, string][] {
  return names.flatMap((a, i) => names.slice(i + 1).map((b): [string, string] => [a, b]));
}

/** The demo's clusters must be its own: it never touches (and never removes) clusters it did not make. */
function refuseExistingClusters(home: string): void {
  const { clusters } = readMesh(home);
  if (clusters.length === 0) return;
  throw new CliError(`the state directory ${home} already holds clusters (${clusters.map((c) => c.name).join(', ')}); the demo makes its own and leaves existing ones alone`, 1, [
    'run it with a state directory of its own: STRAIT_HOME=$(mktemp -d) strait demo',
    `or, if these clusters are an earlier demo's and you are done with them: strait down && rm -rf ${shown(home)}`,
  ]);
}

/** `home` as the user would type it: relative when it lies under the working directory. */
function shown(home: string): string {
  const rel = relative(process.cwd(), home);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : home;
}

/** The top-level entries of `home` before the demo, or undefined when it does not exist yet. */
function homeEntries(home: string): Set<string> | undefined {
  return existsSync(home) ? new Set(readdirSync(home)) : undefined;
}

/** Stops the demo's clusters and removes only what the demo added to `home`. */
async function cleanUp(home: string, before: Set<string> | undefined, clusters: string[]): Promise<string[]> {
  const { down } = await import('../runtime/up.js');
  const stopped = await down(home);
  if (before === undefined) {
    rmSync(home, { recursive: true, force: true });
    return stopped;
  }
  for (const entry of existsSync(home) ? readdirSync(home) : []) {
    if (!before.has(entry)) rmSync(join(home, entry), { recursive: true, force: true });
  }
  for (const name of clusters) rmSync(clusterDir(home, name), { recursive: true, force: true });
  return stopped;
}

/** examples/ of this installation: two levels above this file in src/, three in dist/src/. */
function examplesDir(): string {
  for (const rel of ['../../examples', '../../../examples']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new CliError(`the examples/ folder is missing from this installation (${fileURLToPath(new URL('../../', import.meta.url))}); the demo reads its manifests from it, so run it from a clone of the repository`);
}

/** Runs one slow step behind a spinner, then prints what it did and how long it took. */
async function step<T>(text: string, signal: AbortSignal | undefined, run: (progress: (msg: string) => void) => Promise<T>, done: (result: T) => string = () => text): Promise<T> {
  signal?.throwIfAborted();
  const started = performance.now();
  const progress = await spinner(text);
  try {
    const result = await run((msg) => (progress.text = `${text}: ${msg}`));
    progress.stop();
    console.log(`${colour.ok('✓')} ${done(result)} ${colour.dim(`(${seconds(performance.now() - started)})`)}`);
    return result;
  } catch (err) {
    progress.stop();
    throw err;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Polls `probe` until it returns a value; its `waiting` text says what is still missing when time runs out. */
async function waitUntil<T>(what: string, probe: () => Promise<{ value?: T; waiting: string }>, progress: (msg: string) => void, signal: AbortSignal): Promise<T> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const { value, waiting } = await probe();
    if (value !== undefined) return value;
    progress(waiting);
    if (Date.now() > deadline) throw new CliError(`${what} took longer than ${READY_TIMEOUT_MS / 1000} s: ${waiting}`, 1, ['run `strait demo --keep` to leave the clusters running and look with: strait get pods --cluster <name>, strait describe pod <name>, strait logs <pod>']);
    await sleep(50, undefined, { signal });
  }
}

function waitForDeployments(scenario: Scenario, client: (cluster: string) => AdminClient, progress: (msg: string) => void, signal: AbortSignal): Promise<true> {
  // Only the deployments not seen ready yet are asked about again.
  let waitingFor = scenario.deployments;
  return waitUntil('starting the pods', async () => {
    const pending: string[] = [];
    const states = await Promise.all(waitingFor.map(async (d) => {
      const deployment = (await client(d.cluster).get({ kind: 'Deployment', namespace: scenario.namespace, name: d.name })) as Deployment | undefined;
      const wanted = deployment?.spec?.replicas ?? 1;
      const ready = deployment?.status?.readyReplicas ?? 0;
      if (ready < wanted) pending.push(`${d.name} in ${d.cluster} ${ready}/${wanted} ready`);
      return ready < wanted;
    }));
    waitingFor = waitingFor.filter((_, i) => states[i]);
    return waitingFor.length === 0 ? { value: true, waiting: '' } : { waiting: pending.join(', ') };
  }, progress, signal);
}

/** The service as callers in its cluster see it (what `strait service list` shows); its backends, every frontend's. */
async function listedBackends(client: AdminClient, namespace: string, name: string): Promise<ListedService['frontends'][number]['backends']> {
  const service = (await client.services(namespace)).services.find((s) => s.name === name);
  return service?.frontends.flatMap((f) => f.backends) ?? [];
}

function waitForReach(reach: Scenario['reach'][number], namespace: string, client: AdminClient, progress: (msg: string) => void, signal: AbortSignal): Promise<true> {
  return waitUntil(`reaching ${reach.service} from ${reach.cluster}`, async () => {
    const active = new Set((await listedBackends(client, namespace, reach.service)).filter((b) => b.state === 'active').map((b) => b.cluster));
    const missing = reach.from.filter((c) => !active.has(c));
    return missing.length === 0 ? { value: true, waiting: '' } : { waiting: `${reach.service} in ${reach.cluster} has no ready backend in ${listed(missing)} yet` };
  }, progress, signal);
}

/** Which backend each pod belongs to, by pod name: an answer names the pod that served it. */
async function backendPods(scenario: Scenario, client: (cluster: string) => AdminClient): Promise<Map<string, Backend>> {
  const pods = new Map<string, Backend>();
  for (const backend of scenario.backends) {
    const deployment = (await client(backend.cluster).get({ kind: 'Deployment', namespace: scenario.namespace, name: backend.deployment })) as Deployment | undefined;
    if (!deployment?.spec) throw new CliError(`deployment ${backend.deployment} is gone from ${backend.cluster}`);
    const { items } = await client(backend.cluster).list('Pod', { namespace: scenario.namespace, selector: formatSelector(deployment.spec.selector) });
    for (const pod of items) pods.set(pod.metadata.name, backend);
  }
  return pods;
}

/** The client pod's proxy, which the calls go through as `strait exec POD -- curl URL` sends them. */
async function clientProxy(scenario: Scenario, home: string, client: AdminClient): Promise<string> {
  const { cluster, pod: target } = scenario.client;
  const pod = (await findPod({ name: cluster, home, client, namespace: scenario.namespace, namespaceGiven: false }, target)) as Pod;
  const proxy = podEnvironment(pod).http_proxy;
  if (!proxy) throw new CliError(`${target} in ${cluster} has no proxy (it is not meshed); its manifest needs the annotation linkerd.io/inject: enabled`);
  return proxy;
}

/** Sets the annotation as `strait annotate --overwrite` does, then waits until callers in that cluster prefer only `preferred`. */
async function annotateAndWait(change: NonNullable<Round['annotate']>, namespace: string, client: AdminClient, signal: AbortSignal): Promise<void> {
  const setting = `${change.key}=${change.value}`;
  await step(`setting ${setting} on ${change.service} in ${change.cluster}`, signal, async (progress) => {
    const service = await client.get({ kind: 'Service', namespace, name: change.service });
    if (!service) throw new CliError(`service ${change.service} is gone from ${change.cluster}`);
    // Without the status: it is the control plane's to write.
    const { status: _status, ...desired } = service;
    await client.apply([{ ...desired, metadata: { ...service.metadata, annotations: { ...service.metadata.annotations, [change.key]: change.value } } }]);
    return waitUntil(`applying ${setting}`, async () => {
      const preferred = new Set((await listedBackends(client, namespace, change.service)).filter((b) => b.preferred).map((b) => b.cluster));
      const done = preferred.size === change.preferred.length && change.preferred.every((c) => preferred.has(c));
      return done ? { value: true, waiting: '' } : { waiting: `callers in ${change.cluster} still prefer ${listed([...preferred]) || 'nothing'}` };
    }, progress, signal);
  }, () => `service/${change.service} annotated ${setting} in ${change.cluster}: callers there now prefer the backends in ${listed(change.preferred)}`);
}

/** A backend as an answer line names it: its label, and its cluster when the label is not that. */
function backendName(backend: Backend): string {
  return backend.label === backend.cluster ? backend.cluster : `${backend.label} in ${backend.cluster}`;
}

/** One round of calls from the client pod through its proxy, each answer shown with the backend that gave it, then the counts. */
async function callRound(scenario: Scenario, round: Round, proxy: string, backendOf: (pod: string) => Promise<Backend | undefined>, first: boolean, signal: AbortSignal): Promise<void> {
  const { cluster, pod: target, url } = scenario.client;
  console.log(`\n${colour.bold(first ? `${round.calls} calls to ${url} from ${target} in ${cluster}, through its proxy:` : `${round.calls} more calls to ${url}:`)}`);
  const counts = new Map(scenario.backends.map((b) => [b.label, 0]));
  let failed = 0;
  let strayed = 0;
  let firstAcross: number | undefined;
  for (let i = 0; i < round.calls; i++) {
    signal.throwIfAborted();
    const answer = await callThroughProxy(proxy, url).catch((err: Error) => ({ status: 0, body: err.message }));
    const pod = answer.status === 200 ? scenario.podOf(answer.body) : undefined;
    const backend = pod === undefined ? undefined : await backendOf(pod);
    if (pod === undefined || !backend) {
      failed++;
      const why = answer.status === 200 ? 'answered by no pod of the demo' : 'failed';
      console.log(colour.bad(`call ${i + 1} ${why}: ${answer.status === 0 || answer.status === 200 ? '' : `HTTP ${answer.status}: `}${answer.body}`));
      continue;
    }
    counts.set(backend.label, counts.get(backend.label)! + 1);
    if (backend.cluster !== cluster) firstAcross ??= performance.now();
    const line = scenario.printBody ? answer.body : `${pod.padEnd(POD_COLUMN)}${backendName(backend)}`;
    if (round.expect.includes(backend.label)) console.log(line);
    else {
      strayed++;
      console.log(colour.bad(`${line}   (not ${listed(round.expect)})`));
    }
  }

  const width = Math.max('failed'.length, ...scenario.backends.map((b) => b.label.length)) + 2;
  const row = (label: string, count: number) => `  ${label.padEnd(width)}${String(count).padStart(3)}`;
  const where = (b: Backend) => `${b.label === b.cluster ? '' : `from ${b.cluster}, `}${b.cluster === cluster ? 'local' : 'across the link through its gateway'}`;
  console.log(`\n${colour.bold('answered by:')}`);
  for (const b of scenario.backends) console.log(`${row(b.label, counts.get(b.label)!)}   ${colour.dim(where(b))}`);
  console.log(failed > 0 ? colour.bad(row('failed', failed)) : row('failed', failed));
  if (first && firstAcross !== undefined) console.log(`first cross-cluster answer after ${seconds(firstAcross)}`);
  if (round.annotate && strayed === 0 && failed === 0) {
    console.log(`all ${round.calls} answered from ${listed(round.expect)}, as ${round.annotate.key}=${round.annotate.value} asks`);
  }
  if (failed > 0) throw new CliError(`${failed} of ${round.calls} calls failed`);
  if (strayed > 0) throw new CliError(`${strayed} of ${round.calls} calls were answered by a backend other than ${listed(round.expect)}`);
}

/** One GET of `url` through the HTTP proxy at `proxy`, as curl sends it when http_proxy is set. */
function callThroughProxy(proxy: string, url: string): Promise<{ status: number; body: string }> {
  const via = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = request({ host: via.hostname, port: via.port, path: url, headers: { host: new URL(url).host }, agent: false, timeout: CALL_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trimEnd() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CALL_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

function printNextSteps(scenario: Scenario, home: string, keep: boolean): void {
  const where = process.env.STRAIT_HOME === undefined ? 'from this directory' : `with STRAIT_HOME=${home}`;
  console.log(`\n${keep ? `The clusters keep running (state in ${shown(home)}). Explore further ${where}:` : 'Run `strait demo --keep` to leave the clusters running and explore further with:'}`);
  for (const command of scenario.explore) console.log(`  strait ${command}`);
  if (keep) console.log(`Stop everything with: strait down   ${colour.dim(`(then rm -rf ${shown(home)} to remove its state)`)}`);
  else console.log('');
}
