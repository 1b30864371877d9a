// The node:http client pool both sides use for plain HTTP/1.1 (to an unmeshed endpoint, or to the
// app for `Expect: 100-continue`), its connections counted in a TCP series.
import http from 'node:http';
import type net from 'node:net';
import type { TcpSeries } from '../metrics.js';

export function countedAgent(series: TcpSeries): http.Agent {
  // Idle connections close before a Node server's 5 s keep-alive would close them under us.
  const agent = new http.Agent({ keepAlive: true, scheduling: 'lifo', timeout: 4000 });
  const createConnection = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const socket = createConnection(options, callback) as net.Socket;
    series.track(socket);
    return socket;
  };
  return agent;
}
