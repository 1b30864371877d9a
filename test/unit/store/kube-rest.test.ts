import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServingPem } from '../../../src/cli/install-pki.js';
import { KubeRest, KubeTransportError } from '../../../src/store/kube-rest.js';

/** An API server stand-in that records the credentials each request brings. */
async function recordingServer(t: { after(fn: () => void): void }) {
  const tls = await createServingPem('kubernetes', 'default', { ips: ['127.0.0.1'] });
  const seen: string[] = [];
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    seen.push(req.headers.authorization ?? '');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ gitVersion: 'v1.36.3' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return { seen, port: (server.address() as AddressInfo).port, ca: tls.cert };
}

test('in a pod, the ServiceAccount token the kubelet rotates is read again within a minute, as client-go does', async (t) => {
  const { seen, port, ca } = await recordingServer(t);
  const root = mkdtempSync(join(tmpdir(), 'strait-kube-rest-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ca.crt'), ca);
  writeFileSync(join(dir, 'namespace'), 'strait-system');
  writeFileSync(join(dir, 'token'), 'first');
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
  process.env.KUBERNETES_SERVICE_PORT = String(port);
  t.after(() => {
    for (const [key, value] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });

  const rest = await KubeRest.connect({ inClusterRoot: root });
  t.after(() => rest.close());
  await rest.request('GET', '/version');
  writeFileSync(join(dir, 'token'), 'second');
  await rest.request('GET', '/version');
  t.mock.timers.tick(61_000);
  await rest.request('GET', '/version');
  assert.deepEqual(seen, ['Bearer first', 'Bearer first', 'Bearer second']);
});

test('a server that does not answer is a time-out, one that refuses is unreachable, each naming the address', async (t) => {
  const { ca } = await recordingServer(t);
  const file = join(mkdtempSync(join(tmpdir(), 'strait-kube-rest-')), 'kubeconfig');
  const kubeconfig = (server: string) =>
    JSON.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'c', clusters: [{ name: 'c', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }] });
  t.after(() => rmSync(file, { force: true }));

  // Takes the connection and never says a word, not even the TLS handshake.
  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  writeFileSync(file, kubeconfig(`https://127.0.0.1:${(silent.address() as AddressInfo).port}`));
  const slow = await KubeRest.connect({ kubeconfig: file, timeoutMs: 200 });
  t.after(() => slow.close());
  await assert.rejects(slow.request('GET', '/version'), (err: unknown) => err instanceof KubeTransportError && err.kind === 'timeout' && /^GET https:\/\/127\.0\.0\.1:\d+\/version: no answer within 200 ms$/.test(err.message));

  // A port nothing listens on any more.
  const gone = net.createServer();
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
  const closedPort = (gone.address() as AddressInfo).port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  writeFileSync(file, kubeconfig(`https://127.0.0.1:${closedPort}`));
  const refused = await KubeRest.connect({ kubeconfig: file });
  t.after(() => refused.close());
  await assert.rejects(refused.request('GET', '/version'), (err: unknown) => err instanceof KubeTransportError && err.kind === 'unreachable' && new RegExp(`^GET https://127\\.0\\.0\\.1:${closedPort}/version: connect ECONNREFUSED`).test(err.message));
});
