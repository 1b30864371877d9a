// Service addresses on a node without kube-proxy: the node agent listens on every Service's
// ClusterIP (a loopback address here) and NodePort, and joins each connection to a ready pod that the
// Service selects — what kube-proxy's old userspace mode did. `default/kubernetes` leads to the API
// server. Pod addresses are loopback ones, which EndpointSlices refuse, so endpoints come from pods.
import net from 'node:net';
import { matchesSelector } from '../../api/labels.js';
import { splice } from '../../gateway/splice.js';
import { isPodReady } from '../pod-types.js';
import type { RuntimeLog } from '../log.js';
import type { KubePod } from './pod-files.js';

const IDLE_TIMEOUT_MS = 10 * 60_000;
const CONNECT_TIMEOUT_MS = 3000;

export interface KubeService {
  metadata: { name: string; namespace?: string };
  spec: {
    type?: string;
    clusterIP?: string;
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string; nodePort?: number; protocol?: string }[];
  };
}

interface Backend {
  host: string;
  port: number;
}

interface Listener {
  server: net.Server;
  /** Where it leads: a service port. */
  key: string;
}

export class ServiceProxy {
  private services = new Map<string, KubeService>();
  private pods = new Map<string, KubePod>();
  private readonly listeners = new Map<string, Listener>();
  private readonly next = new Map<string, number>();

  constructor(
    private readonly nodeIp: string,
    private readonly apiServer: Backend,
    private readonly log: RuntimeLog,
  ) {}

  setServices(items: KubeService[]): void {
    this.services = new Map(items.map((s) => [keyOf(s), s]));
    this.sync();
  }

  service(type: string, s: KubeService): void {
    if (type === 'DELETED') this.services.delete(keyOf(s));
    else this.services.set(keyOf(s), s);
    this.sync();
  }

  setPods(items: KubePod[]): void {
    this.pods = new Map(items.map((p) => [keyOf(p), p]));
  }

  pod(type: string, p: KubePod): void {
    if (type === 'DELETED') this.pods.delete(keyOf(p));
    else this.pods.set(keyOf(p), p);
  }

  close(): void {
    for (const l of this.listeners.values()) l.server.close();
    this.listeners.clear();
  }

  /** Opens a listener for every service port that lacks one and closes those whose port is gone. */
  private sync(): void {
    const wanted = new Map<string, string>();
    for (const [key, s] of this.services) {
      for (const port of s.spec.ports ?? []) {
        if ((port.protocol ?? 'TCP') !== 'TCP') continue;
        const target = `${key}:${port.port}`;
        if (s.spec.clusterIP && s.spec.clusterIP !== 'None') wanted.set(`${s.spec.clusterIP}:${port.port}`, target);
        if (port.nodePort) wanted.set(`${this.nodeIp}:${port.nodePort}`, target);
      }
    }
    for (const [address, l] of this.listeners) {
      if (wanted.get(address) !== l.key) {
        l.server.close();
        this.listeners.delete(address);
      }
    }
    for (const [address, key] of wanted) if (!this.listeners.has(address)) this.listen(address, key);
  }

  private listen(address: string, key: string): void {
    const colon = address.lastIndexOf(':');
    const server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client, key));
    server.on('error', (err) => {
      this.log.warn(`service ${key}: cannot listen on ${address}: ${err.message}`);
      this.listeners.delete(address);
    });
    server.listen(Number(address.slice(colon + 1)), address.slice(0, colon));
    this.listeners.set(address, { server, key });
  }

  /** The ready pods' addresses for a service port, in a stable order. */
  backends(key: string): Backend[] {
    const colon = key.lastIndexOf(':');
    const service = this.services.get(key.slice(0, colon));
    const port = service?.spec.ports?.find((p) => p.port === Number(key.slice(colon + 1)));
    if (!service || !port) return [];
    if (service.metadata.namespace === 'default' && service.metadata.name === 'kubernetes') return [this.apiServer];
    if (!service.spec.selector) return [];
    const out: Backend[] = [];
    for (const pod of this.pods.values()) {
      if (pod.metadata.namespace !== service.metadata.namespace || !pod.status?.podIP || !isPodReady(pod)) continue;
      if (pod.metadata.deletionTimestamp || !matchesSelector(pod.metadata.labels, { matchLabels: service.spec.selector })) continue;
      const target = targetPort(pod, port.targetPort ?? port.port);
      if (target !== undefined) out.push({ host: pod.status.podIP, port: target });
    }
    return out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  private accept(client: net.Socket, key: string): void {
    const backends = this.backends(key);
    if (backends.length === 0) {
      client.destroy();
      return;
    }
    const n = this.next.get(key) ?? 0;
    this.next.set(key, n + 1);
    const backend = backends[n % backends.length]!;
    const upstream = net.connect({ host: backend.host, port: backend.port, allowHalfOpen: true, timeout: CONNECT_TIMEOUT_MS });
    upstream.once('timeout', () => upstream.destroy());
    upstream.once('connect', () => upstream.setTimeout(0));
    splice(client, upstream, { idleTimeoutMs: IDLE_TIMEOUT_MS, onIdle: () => {}, onDone: () => {} });
  }
}

function targetPort(pod: KubePod, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  const containers = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  return containers.flatMap((c) => c.ports ?? []).find((p) => p.name === target)?.containerPort;
}

const keyOf = (o: { metadata: { name: string; namespace?: string } }) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
