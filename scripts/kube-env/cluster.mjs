// One test cluster on loopback: kine (sqlite) as its store, kube-apiserver, the controller-manager,
// the scheduler and Strait's node agent, each a process of its own with its log in the cluster's
// directory. Cluster i takes one machine-wide 127.x block (the one the local runtime's clusters take
// theirs from): the components listen on 127.x.0.1, Services get ClusterIPs in 127.x.240.0/20, and
// the node agent hands its pods addresses from 127.x.1.1 up.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { binPath, EnvError } from './build.mjs';
import { clusterPki, kubeconfig } from './pki.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dist = (path) => import(new URL(`../../dist/src/${path}`, import.meta.url).href);

export const PORTS = { kine: 2379, apiserver: 6443, controllerManager: 10257, scheduler: 10259 };
/** The controllers the environment runs: what Deployments, Services and ServiceAccounts need. */
const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'endpointslice-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
  'service-cidr-controller',
  'pod-garbage-collector-controller',
  // Takes the not-ready taint off a Ready node, and marks a node whose Lease lapses NotReady.
  'node-lifecycle-controller',
];
const READY_TIMEOUT_MS = 180_000;
const NODE_PROXIER_RBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'strait:node-proxier'}
rules:
- {apiGroups: [''], resources: [pods, services], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'strait:node-proxier'}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'strait:node-proxier'}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'system:nodes'}
`;

export const nodeNameOf = (cluster) => `${cluster}-node`;

/** The addresses of the cluster in block `index`. */
export function clusterLayout(dir, name, index, prefix) {
  return {
    name,
    index,
    prefix,
    dir: join(dir, name),
    apiAddress: `${prefix}.0.1`,
    apiPort: PORTS.apiserver,
    serviceCidr: `${prefix}.240.0/20`,
    kubernetesService: `${prefix}.240.1`,
    podCidr: `${prefix}.0.0/16`,
    nodeName: nodeNameOf(name),
  };
}

async function start(layout, component, executable, args) {
  const { startProcess } = await dist('runtime/processes.js');
  const logPath = join(layout.dir, 'logs', `${component}.log`);
  const child = await startProcess({ executable, args, env: { ...process.env }, cwd: layout.dir, logPath, podUid: `kube-env/${layout.name}/${component}` });
  child.release();
  return { component, ...child.record, logPath };
}

/** GET over the cluster's TLS with the admin's certificate; resolves to the status and body. */
export function adminGet(layout, path, { address = layout.apiAddress, port = layout.apiPort } = {}) {
  const pki = join(layout.dir, 'pki');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address,
        port,
        path,
        ca: readFileSync(join(pki, 'ca.crt')),
        cert: readFileSync(join(pki, 'admin.crt')),
        key: readFileSync(join(pki, 'admin.key')),
        rejectUnauthorized: port === layout.apiPort,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${address}:${port} in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

function accepts(host, port) {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** Waits until `check` resolves true; the error names what did not come up and the log to read. */
async function waitFor(what, logPath, check, processes) {
  const { isAlive } = await dist('runtime/processes.js');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const dead = processes.find((p) => !isAlive(p));
    if (dead) throw new EnvError(`kube-env: ${dead.component} exited while waiting for ${what}; see ${dead.logPath}`);
    try {
      if (await check()) return;
    } catch (err) {
      last = err.message;
    }
    await sleep(250);
  }
  throw new EnvError(`kube-env: ${what} was not ready after ${READY_TIMEOUT_MS / 1000} s${last ? ` (${last})` : ''}; see ${logPath}`);
}

function componentKubeconfig(layout, user) {
  const path = join(layout.dir, `${user}.kubeconfig`);
  writeFileSync(path, kubeconfig([{ name: layout.name, apiAddress: layout.apiAddress, apiPort: layout.apiPort, pki: join(layout.dir, 'pki'), user }]), { mode: 0o600 });
  return path;
}

/**
 * Starts every component of one cluster and waits until each answers; returns the processes.
 * `onStore` gets the pid of the store as soon as it runs (it holds the address block). On failure,
 * whatever was started is stopped again.
 */
export async function startCluster(layout, { node = true, onStore }) {
  const processes = [];
  try {
    await startComponents(layout, node, processes, onStore);
  } catch (err) {
    await stopCluster(layout, processes);
    throw err;
  }
  return processes;
}

async function startComponents(layout, node, processes, onStore) {
  mkdirSync(join(layout.dir, 'logs'), { recursive: true });
  const pki = clusterPki(join(layout.dir, 'pki'), { cluster: layout.name, apiAddress: layout.apiAddress, serviceAddress: layout.kubernetesService, nodeName: layout.nodeName });
  const a = layout.apiAddress;

  mkdirSync(join(layout.dir, 'kine'), { recursive: true });
  const db = join(layout.dir, 'kine', 'state.db');
  processes.push(await start(layout, 'kine', binPath('kine'), ['--endpoint', `sqlite://${db}?_journal=WAL&cache=shared&_busy_timeout=30000`, '--listen-address', `${a}:${PORTS.kine}`, '--metrics-bind-address', '0']));
  onStore(processes[0].pid);
  await waitFor(`${layout.name}'s kine at ${a}:${PORTS.kine}`, processes[0].logPath, () => accepts(a, PORTS.kine), processes);

  processes.push(
    await start(layout, 'kube-apiserver', binPath('kube-apiserver'), [
      `--etcd-servers=http://${a}:${PORTS.kine}`,
      `--bind-address=${a}`,
      `--secure-port=${PORTS.apiserver}`,
      `--advertise-address=${a}`,
      `--service-cluster-ip-range=${layout.serviceCidr}`,
      `--client-ca-file=${pki.ca}`,
      `--tls-cert-file=${join(pki.dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki.dir, 'apiserver.key')}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      // The API server's own Endpoints would hold a loopback address, which Endpoints validation refuses.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--profiling=false',
    ]),
  );
  const apiLog = processes[1].logPath;
  await waitFor(`${layout.name}'s kube-apiserver at https://${a}:${PORTS.apiserver}`, apiLog, async () => (await adminGet(layout, '/readyz')).status === 200, processes);

  const cm = componentKubeconfig(layout, 'controller-manager');
  processes.push(
    await start(layout, 'kube-controller-manager', binPath('kube-controller-manager'), [
      `--kubeconfig=${cm}`,
      `--authentication-kubeconfig=${cm}`,
      `--authorization-kubeconfig=${cm}`,
      `--bind-address=${a}`,
      `--secure-port=${PORTS.controllerManager}`,
      `--controllers=${CONTROLLERS.join(',')}`,
      `--service-account-private-key-file=${pki.saKey}`,
      `--root-ca-file=${pki.ca}`,
      '--use-service-account-credentials=true',
      '--leader-elect=false',
      `--cluster-name=${layout.name}`,
      `--service-cluster-ip-range=${layout.serviceCidr}`,
    ]),
  );
  const sched = componentKubeconfig(layout, 'scheduler');
  processes.push(
    await start(layout, 'kube-scheduler', binPath('kube-scheduler'), [
      `--kubeconfig=${sched}`,
      `--authentication-kubeconfig=${sched}`,
      `--authorization-kubeconfig=${sched}`,
      `--bind-address=${a}`,
      `--secure-port=${PORTS.scheduler}`,
      '--leader-elect=false',
    ]),
  );
  const healthy = (port) => async () => (await adminGet(layout, '/healthz', { port })).status === 200;
  await waitFor(`${layout.name}'s kube-controller-manager`, processes[2].logPath, healthy(PORTS.controllerManager), processes);
  await waitFor(`${layout.name}'s kube-scheduler`, processes[3].logPath, healthy(PORTS.scheduler), processes);
  // The ServiceAccount controller makes `default` in every namespace: pods can be created from then on.
  await waitFor(`${layout.name}'s ServiceAccount controller`, processes[2].logPath, async () => (await adminGet(layout, '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, processes);

  if (node) {
    // Pods' addresses are loopback ones, which EndpointSlices refuse, so the node agent's service
    // proxy reads Services' pods themselves: the Node authorizer lets a node list only its own.
    const admin = componentKubeconfig(layout, 'admin');
    execFileSync(binPath('kubectl'), ['--kubeconfig', admin, 'apply', '-f', '-'], { input: NODE_PROXIER_RBAC, stdio: ['pipe', 'ignore', 'pipe'] });
    const nodeConfig = componentKubeconfig(layout, 'node');
    const agent = await start(layout, 'strait-node', process.execPath, [
      join(ROOT, 'bin', 'strait.js'),
      'node',
      '--kubeconfig',
      nodeConfig,
      '--node-name',
      layout.nodeName,
      '--pod-cidr',
      layout.podCidr,
      '--dir',
      join(layout.dir, 'node'),
    ]);
    processes.push(agent);
    await waitFor(`${layout.name}'s node agent (${layout.nodeName} Ready)`, agent.logPath, async () => {
      const { status, body } = await adminGet(layout, `/api/v1/nodes/${layout.nodeName}`);
      return status === 200 && JSON.parse(body).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    }, processes);
  }
}

/** Stops the processes (last started first) and every pod process the node agent left. */
export async function stopCluster(layout, processes) {
  const { terminate } = await dist('runtime/processes.js');
  for (const p of [...processes].reverse()) await terminate(p, 10_000);
  const nodeDir = join(layout.dir, 'node');
  if (existsSync(nodeDir)) {
    const { killRecordedProcesses } = await dist('runtime/pods.js');
    await killRecordedProcesses(nodeDir);
  }
}
