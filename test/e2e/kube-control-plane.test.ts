// `strait control-plane --platform kubernetes`: the control plane's parts over the Kubernetes store
// against a real kube-apiserver — refused without the CRDs; then the clusterset controller, the link
// manager, discovery, the gateway and the metrics collector at work on what the API server holds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { Resource } from '../../src/api/types.js';
import { LINK_KEY_SECRET, startKubeControlPlane, type KubeControlPlane, type KubeControlPlaneOptions } from '../../src/runtime/kube-control-plane.js';
import { KubernetesStore } from '../../src/store/kubernetes.js';
import { eventually, installCrds, KubeEnv, STRAIT } from './kube-harness.js';

const CLUSTER = 'kcp';
let env: KubeEnv | undefined;
let prefix = '';
let store: KubernetesStore;
let controlPlane: KubeControlPlane | undefined;
const until = (check: () => boolean | Promise<boolean>, what: string) => eventually(what, async () => await check(), 20_000);
const certs = mkdtempSync(join(tmpdir(), 'strait-kcp-certs-'));

function options(): KubeControlPlaneOptions {
  return {
    kubeconfig: env!.kubeconfig,
    context: CLUSTER,
    cluster: 'kcp',
    trustDomain: 'cluster.local',
    issuer: { trustAnchor: join(certs, 'trust-anchor.crt'), issuerCert: join(certs, 'issuer-kcp.crt'), issuerKey: join(certs, 'issuer-kcp.key') },
    host: `${prefix}.200.1`,
    gatewayListen: { host: `${prefix}.200.2`, port: 4143 },
    gatewayAddress: `${prefix}.200.2:4143`,
    log: pino({ level: 'silent' }),
  };
}

before(async () => {
  const made = spawnSync(process.execPath, [STRAIT, 'certs', 'create', '--clusters', 'kcp', '--out', certs], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  env = await KubeEnv.up([CLUSTER], { node: false });
  prefix = env.prefix(CLUSTER);
  store = await KubernetesStore.connect({ kubeconfig: env.kubeconfig, context: CLUSTER });
});

after(async () => {
  await controlPlane?.stop();
  await store?.close();
  await env?.down();
  env?.remove();
  rmSync(certs, { recursive: true, force: true });
});

test('without Strait CRDs the control plane refuses to start and says how to install them', async () => {
  await assert.rejects(startKubeControlPlane(options()), /lacks Strait's CRDs \(.*links\.strait\.dev.*\); install them with strait install/);
});

test('on Kubernetes the clusterset controller, the link manager, discovery, the gateway and the collector run over the API server', async () => {
  await installCrds(store.rest);
  controlPlane = await startKubeControlPlane(options());
  assert.ok(await store.get({ kind: 'Secret', namespace: 'strait-system', name: LINK_KEY_SECRET }), 'the link credential key is kept in a Secret');

  const web: Resource = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', labels: { 'mirror.linkerd.io/exported': 'true' } }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } };
  await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }, web]);
  await store.apply([{ apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name: 'web', namespace: 'shop' } }]);

  // The clusterset controller: a ServiceImport for the export, and the export's conditions in its status subresource.
  await until(async () => (await store.get({ kind: 'ServiceImport', namespace: 'shop', name: 'web' })) !== undefined, 'the ServiceImport');
  await until(async () => {
    const exported = await store.get({ kind: 'ServiceExport', namespace: 'shop', name: 'web' });
    const conditions = (exported?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
    return conditions.some((c) => c.type === 'Valid' && c.status === 'True') && conditions.some((c) => c.type === 'Ready' && c.status === 'True');
  }, 'the ServiceExport conditions');

  // The link manager reads Links from the CRD and reports in their status.
  await store.apply([{ apiVersion: 'strait.dev/v1alpha1', kind: 'Link', metadata: { name: 'kcp', namespace: 'strait-system' }, spec: { targetClusterName: 'kcp', gatewayAddress: '127.0.0.1:4143', credentialsSecret: 'kcp-credentials' } }]);
  await until(async () => {
    const link = await store.get({ kind: 'Link', namespace: 'strait-system', name: 'kcp' });
    return (link?.status as { conditions?: { reason: string }[] } | undefined)?.conditions?.[0]?.reason === 'LinkToSelf';
  }, 'the Link refused as a link to itself');

  // Discovery answers from its informers over the API server.
  await until(() => controlPlane!.discovery.listServices({ namespace: 'shop' }).services.some((s) => s.name === 'web'), 'discovery to list web');

  // The gateway listens on its address.
  await new Promise<void>((resolve, reject) => {
    const socket = connect(4143, `${prefix}.200.2`, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
  assert.equal(controlPlane.gateway.address, `${prefix}.200.2:4143`);
  // The collector reads the pods from its informer: none are meshed here, so it has nothing to show.
  assert.ok(await controlPlane.metrics.stats(60));
});
