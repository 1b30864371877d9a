// The endpoint stage for opaque TCP: a connection to the picked endpoint, a tunnel through its
// proxy (mTLS, ALPN strait-tcp) when it is meshed, else a plain TCP connection to it.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { MetricLabels, ProxyMetrics } from '../../metrics.js';
import type { Pick } from '../concrete/route-endpoint.js';
import type { MeshConnector } from '../endpoint/connector.js';
import { ConnectFailed, describeEndpoint } from '../endpoint/target.js';

export function connectTcp(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export class TcpEndpoint {
  constructor(
    private readonly connector: MeshConnector,
    private readonly metrics: ProxyMetrics,
    private readonly peerInboundPort: number,
  ) {}

  /** Connects to the picked endpoint; rejects with ConnectFailed. */
  async open(pick: Pick): Promise<Duplex> {
    const endpoint = pick.target;
    const { address, port } = endpoint.endpoint;
    const labels: MetricLabels = { ...endpoint.labels, authority: undefined, peer: 'dst' };
    const target = endpoint.meshTarget(this.peerInboundPort);
    if (target) return this.connector.tunnel(target, port, labels);
    try {
      const socket = await connectTcp(address, port);
      this.metrics.tcpSeries(labels).track(socket);
      return socket;
    } catch (err) {
      throw new ConnectFailed(`cannot connect to ${describeEndpoint(endpoint.endpoint)}: ${(err as Error).message}`);
    }
  }
}
