// The node agent's service proxy on real loopback sockets: which pods a Service leads to, named
// target ports, NodePorts, the API server behind default/kubernetes, and listeners that follow the
// Services.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { blockIndexOf } from '../../../src/runtime/node/agent.js';
import type { KubePod } from '../../../src/runtime/node/pod-files.js';
import { ServiceProxy, type KubeService } from '../../../src/runtime/node/services.js';
import { silentLog } from '../../../src/runtime/log.js';

// An address block of its own, well away from the runtime's 127.20 and up.
const BASE = `127.3.${1 + Math.floor(Math.random() * 200)}`;
const servers: net.Server[] = [];

/** A backend that answers every connection with its name. */
async function backend(host: string, port: number, name: string): Promise<void> {
  const server = net.createServer((s) => s.end(name));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
}

function ask(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(''));
  });
}

const pod = (name: string, ip: string, labels: Record<string, string>, ready = true): KubePod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels },
  spec: { containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 7000 }] }] },
  status: { podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

const service = (name: string, clusterIP: string, selector: Record<string, string>, port: { port: number; targetPort?: number | string; nodePort?: number }): KubeService => ({
  metadata: { name, namespace: 'default' },
  spec: { clusterIP, selector, ports: [port] },
});

after(() => {
  for (const s of servers) s.close();
});

test('a Service leads only to the ready pods its selector picks, by named target port', async () => {
  await backend(`${BASE}.11`, 7000, 'web-1');
  await backend(`${BASE}.12`, 7000, 'other');
  await backend(`${BASE}.13`, 7000, 'web-unready');
  const proxy = new ServiceProxy(`${BASE}.2`, { host: '127.0.0.1', port: 1 }, silentLog);
  after(() => proxy.close());
  proxy.setPods([pod('web-1', `${BASE}.11`, { app: 'web' }), pod('other', `${BASE}.12`, { app: 'other' }), pod('web-2', `${BASE}.13`, { app: 'web' }, false)]);
  proxy.setServices([service('web', `${BASE}.100`, { app: 'web' }, { port: 80, targetPort: 'http', nodePort: 30080 })]);
  await new Promise((r) => setTimeout(r, 50));
  const answers = await Promise.all([1, 2, 3, 4].map(() => ask(`${BASE}.100`, 80)));
  assert.deepEqual(answers, ['web-1', 'web-1', 'web-1', 'web-1']);
  assert.equal(await ask(`${BASE}.2`, 30080), 'web-1', 'the NodePort on the node address');

  // A pod turning ready joins; the Service deleted closes its listeners.
  proxy.pod('MODIFIED', pod('web-2', `${BASE}.13`, { app: 'web' }));
  const both = new Set(await Promise.all([1, 2, 3, 4].map(() => ask(`${BASE}.100`, 80))));
  assert.deepEqual([...both].sort(), ['web-1', 'web-unready']);
  proxy.service('DELETED', service('web', `${BASE}.100`, { app: 'web' }, { port: 80 }));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await ask(`${BASE}.100`, 80), '', 'nothing listens once the Service is gone');
});

test('default/kubernetes leads to the API server; a Service with no ready pod refuses at once', async () => {
  await backend(`${BASE}.50`, 6443, 'apiserver');
  const proxy = new ServiceProxy(`${BASE}.3`, { host: `${BASE}.50`, port: 6443 }, silentLog);
  after(() => proxy.close());
  proxy.setPods([]);
  proxy.setServices([
    { metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: `${BASE}.101`, ports: [{ port: 443 }] } },
    service('empty', `${BASE}.102`, { app: 'none' }, { port: 80 }),
  ]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await ask(`${BASE}.101`, 443), 'apiserver');
  assert.equal(await ask(`${BASE}.102`, 80), '');
});

test('a pod CIDR must be one of the runtime loopback blocks', () => {
  assert.equal(blockIndexOf('127.20.0.0/16'), 0);
  assert.equal(blockIndexOf('127.45.0.0/16'), 25);
  assert.throws(() => blockIndexOf('10.0.0.0/16'), /must be a loopback block 127\.X\.0\.0\/16/);
  assert.throws(() => blockIndexOf('127.19.0.0/16'), /X from 20 to 255/);
});
