
// The gateway: one TCP port per cluster where every connection from another cluster arrives. It
// reads the ClientHello (without answering it), asks the route table what the server name means,
// and then splices the connection to an endpoint's proxy or to the mesh API — replaying the
// ClientHello, so the TLS session runs end to end and the gateway never sees plaintext — or
// terminates it itself for a probe. Everything else is refused before a byte goes anywhere.
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { pino, type Logger } from 'pino';
import type { TlsIdentity } from '../identity/tls.js';
import { listen } from '../api/listen.js';
import { parseRouteKey } from '../api/route-keys.js';
import { GatewayProbe, type ProbeStats } from './probe.js';
import type { Route, RouteTable, SpliceRoute } from './routes.js';
import { MAX_CLIENT_HELLO_BYTES, readClientHello, type ClientHello, type HelloReadProblem } from './sni.js';
import { splice } from './splice.js';

export const DEFAULT_GATEWAY_PORT = 4143;
export const DEFAULT_HELLO_TIMEOUT_MS = 5_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Proxies keep HTTP/2 sessions open between requests; an hour of silence means the session is gone. */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** TCP keep-alive finds a peer that vanished long before the idle time-out does. */
const KEEP_ALIVE_DELAY_MS = 60_000;

/** A fatal TLS alert, unrecognized_name (RFC 6066 §3), so a TLS client learns why it was refused. */
const ALERT_UNRECOGNIZED_NAME = Buffer.from([21, 3, 3, 0, 2, 2, 112]);

export interface GatewayOptions {
  /** This cluster's name: the probe answers with it. */
  cluster: string;
  /** The gateway's own certificate, presented to probes. */
  identity: TlsIdentity;
  routes: RouteTable;
  /** Where to listen; 0.0.0.0 by default. */
  host?: string;
  /** 4143 by default; 0 picks a free port. */
  port?: number;
  /** How long a client has to send its whole ClientHello (and, for a probe, to finish the handshake). */
  helloTimeoutMs?: number;
  /** How long connecting to an endpoint or the mesh API may take. */
  connectTimeoutMs?: number;
  /** A spliced connection with no traffic this long is closed. */
  idleTimeoutMs?: number;
  /** The most bytes a ClientHello may take, record headers included. */
  maxClientHelloBytes?: number;
  log?: Logger;
}

/** Why a connection was refused. Nothing of it was forwarded. */
export type RefusalReason = HelloReadProblem | 'no-sni' | 'unknown-sni';
export const REFUSAL_REASONS: readonly RefusalReason[] = ['not-tls', 'malformed', 'oversize', 'timeout', 'closed-early', 'no-sni', 'unknown-sni'];

export interface SpliceStats {
  connections: number;
  active: number;
  /** Bytes forwarded from clients, the replayed ClientHellos included. */
  bytesFromClients: number;
  bytesToClients: number;
  /** Routed connections whose target could not be reached. */
  upstreamFailures: number;
  idleTimeouts: number;
}

export interface GatewayStats {
  cluster: string;
  /** Every connection accepted on the port. */
  accepted: number;
  /** Connections whose ClientHello is still being read. */
  pending: number;
  endpoint: SpliceStats;
  meshApi: SpliceStats;
  probe: ProbeStats;
  refused: Record<RefusalReason, number>;
}

export interface Gateway {
  readonly address: { host: string; port: number };
  stats(): GatewayStats;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface LiveSplice {
  client: net.Socket;
  upstream: net.Socket;
  stats: SpliceStats;
}

/** Starts the gateway and resolves once it listens. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const gateway = new SniGateway(options);
  await gateway.listen(options.host ?? '0.0.0.0', options.port ?? DEFAULT_GATEWAY_PORT);
  return gateway;
}

class SniGateway implements Gateway {
  private readonly server: net.Server;
  private readonly probe: GatewayProbe;
  private readonly log: Logger;
  private readonly helloTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxClientHelloBytes: number;
  /** Every socket the gateway holds, client or upstream, so close() leaves none behind. */
  private readonly sockets = new Set<net.Socket>();
  private readonly pending = new Set<net.Socket>();
  private readonly splices = new Set<LiveSplice>();
  private accepted = 0;
  private closing = false;
  private readonly refused = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>;
  private readonly spliceStats = { endpoint: emptySpliceStats(), 'mesh-api': emptySpliceStats() };
  address = { host: '', port: 0 };

  constructor(private readonly options: GatewayOptions) {
    this.log = options.log ?? pino({ base: { component: 'gateway', cluster: options.cluster } });
    this.helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.maxClientHelloBytes = options.maxClientHelloBytes ?? MAX_CLIENT_HELLO_BYTES;
    this.probe = new GatewayProbe(options.cluster, options.identity, this.log, this.helloTimeoutMs);
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
  }

  async listen(host: string, port: number): Promise<void> {
    await listen(this.server, { port, host });
    this.server.on('error', (err) => this.log.error({ err: err.message }, 'gateway listener failed'));
    const bound = this.server.address() as net.AddressInfo;
    this.address = { host: bound.address, port: bound.port };
    this.log.info({ address: `${bound.address}:${bound.port}` }, 'gateway listening');
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private accept(socket: net.Socket): void {
    this.accepted++;
    this.track(socket);
    this.pending.add(socket);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    // Read now: once the socket is closed its address is gone, and refusals are logged with it.
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    void readClientHello(socket, { timeoutMs: this.helloTimeoutMs, maxBytes: this.maxClientHelloBytes }).then((read) => {
      this.pending.delete(socket);
      // A connection that close() ended is not a refusal.
      if (this.closing) return void socket.destroy();
      if (read.status === 'invalid') this.refuse(socket, peer, read.problem, read.detail);
      else this.route(socket, peer, read.received, read.hello);
    });
  }

  private route(socket: net.Socket, peer: string, received: Buffer, hello: ClientHello): void {
    if (!hello.serverName) {
      const detail = hello.serverName === '' ? 'the ClientHello names an empty server' : 'the ClientHello carries no server name (SNI)';
      return this.refuse(socket, peer, 'no-sni', detail);
    }
    const serverName = hello.serverName.toLowerCase();
    let route: Route | undefined;
    try {
      route = this.options.routes.lookup(serverName);
    } catch (err) {
      this.log.error({ serverName, err: (err as Error).message }, 'the route table failed');
    }
    if (!route) return this.refuse(socket, peer, 'unknown-sni', this.whyUnknown(serverName), serverName);
    if (route.kind === 'probe') return this.probe.accept(socket, received);
    if (this.isSelf(route)) {
      this.spliceStats[route.kind].upstreamFailures++;
      this.log.error({ serverName, target: `${route.host}:${route.port}` }, 'the route points at the gateway itself; refusing it rather than looping');
      return void socket.destroy();
    }
    this.connect(socket, peer, received, route, serverName);
  }

  /** Whether `route` leads back to this listener, which would make each connection open another. */
  private isSelf(route: SpliceRoute): boolean {
    if (route.port !== this.address.port) return false;
    if (route.host === this.address.host) return true;
    if (this.address.host !== '0.0.0.0' && this.address.host !== '::') return false;
    // Listening on every address: any address of this machine is this listener.
    if (route.host === 'localhost' || route.host.startsWith('127.')) return true;
    return Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === route.host));
  }

  private whyUnknown(serverName: string): string {
    const key = parseRouteKey(serverName);
    if (!key) return `"${serverName}" is not a Strait route key`;
    if (key.cluster !== this.options.cluster) return `"${serverName}" names cluster ${key.cluster}, and this is the gateway of ${this.options.cluster}`;
    if (key.kind === 'endpoint') return `"${serverName}" is not an endpoint of a service this cluster exports`;
    return `"${serverName}" is not served by this gateway`;
  }

  /** Connects to the route's target, replays the ClientHello, then splices the two connections. */
  private connect(client: net.Socket, peer: string, received: Buffer, route: SpliceRoute, serverName: string): void {
    const stats = this.spliceStats[route.kind];
    stats.connections++;
    stats.active++;
    const upstream = net.connect({ host: route.host, port: route.port, allowHalfOpen: true, noDelay: true });
    this.track(upstream);
    const live: LiveSplice = { client, upstream, stats };
    const done = () => {
      stats.active--;
      stats.bytesFromClients += upstream.bytesWritten;
      stats.bytesToClients += client.bytesWritten;
      this.splices.delete(live);
    };
    const connectTimer = setTimeout(() => upstream.destroy(new Error(`no connection within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    const onConnectError = (err: Error) => {
      clearTimeout(connectTimer);
      client.off('close', onClientGone);
      stats.upstreamFailures++;
      this.log.warn({ peer, serverName, target: `${route.host}:${route.port}`, err: err.message }, 'could not reach the route target; closing the client');
      client.destroy();
      done();
    };
    const onClientGone = () => {
      clearTimeout(connectTimer);
      upstream.off('error', onConnectError);
      upstream.on('error', () => {});
      upstream.destroy();
      done();
    };
    // Until the splice owns them, a client that leaves ends the attempt, and an error is a failure to connect.
    client.once('close', onClientGone);
    client.on('error', () => client.destroy());
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      upstream.off('error', onConnectError);
      client.off('close', onClientGone);
      upstream.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
      this.splices.add(live);
      upstream.write(received);
      splice(client, upstream, {
        idleTimeoutMs: this.idleTimeoutMs,
        onIdle: () => stats.idleTimeouts++,
        onDone: done,
      });
    });
  }

  /** Closes without forwarding anything; a client that spoke TLS gets an alert saying the name is unknown. */
  private refuse(socket: net.Socket, peer: string, reason: RefusalReason, detail: string, serverName?: string): void {
    this.refused[reason]++;
    this.log.warn({ reason, peer, serverName, detail }, 'refused a connection');
    socket.on('error', () => socket.destroy());
    if (reason !== 'no-sni' && reason !== 'unknown-sni') {
      socket.destroy();
      return;
    }
    // Read and drop whatever else comes so the client's FIN arrives; destroy if it never does.
    socket.resume();
    socket.end(ALERT_UNRECOGNIZED_NAME);
    const timer = setTimeout(() => socket.destroy(), this.helloTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
  }

  stats(): GatewayStats {
    const live = (stats: SpliceStats) => {
      const current = { ...stats };
      for (const s of this.splices) {
        if (s.stats !== stats) continue;
        current.bytesFromClients += s.upstream.bytesWritten;
        current.bytesToClients += s.client.bytesWritten;
      }
      return current;
    };
    return {
      cluster: this.options.cluster,
      accepted: this.accepted,
      pending: this.pending.size,
      endpoint: live(this.spliceStats.endpoint),
      meshApi: live(this.spliceStats['mesh-api']),
      probe: this.probe.stats(),
      refused: { ...this.refused },
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.probe.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

function emptySpliceStats(): SpliceStats {
  return { connections: 0, active: 0, bytesFromClients: 0, bytesToClients: 0, upstreamFailures: 0, idleTimeouts: 0 };
}
