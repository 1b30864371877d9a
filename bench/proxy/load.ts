// A constant-rate HTTP/1.1 load generator in the manner of wrk2: requests are scheduled at fixed
// intervals and each latency is measured from the time the request was *meant* to be sent, so a
// stall shows up in the tail instead of silently lowering the rate (coordinated omission). It
// speaks raw keep-alive HTTP/1.1 over a pool of sockets and parses only what it needs
// (status line, Content-Length), so its own overhead stays small and equal for every target.
import net from 'node:net';

export interface LoadTarget {
  host: string;
  port: number;
  path: string;
  /** The Host header (the authority the request is for). */
  authority: string;
}

export interface ConstantRateOptions {
  rate: number;
  durationMs: number;
  connections: number;
}

export interface LoadResult {
  /** Latency of every request in milliseconds, from its intended send time. */
  latenciesMs: Float64Array;
  errors: number;
  non2xx: number;
  achievedRate: number;
}

interface Conn {
  socket: net.Socket;
  busy: boolean;
  intendedAt: number;
  buffer: Buffer;
}

export async function constantRate(target: LoadTarget, options: ConstantRateOptions): Promise<LoadResult> {
  const request = Buffer.from(`GET ${target.path} HTTP/1.1\r\nHost: ${target.authority}\r\nUser-Agent: strait-bench\r\n\r\n`);
  const total = Math.floor((options.rate * options.durationMs) / 1000);
  const latencies = new Float64Array(total);
  let done = 0;
  let errors = 0;
  let non2xx = 0;
  const queue: number[] = [];
  const idle: Conn[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const complete = (conn: Conn, ok: boolean, status: number) => {
    latencies[done++] = performance.now() - conn.intendedAt;
    if (!ok) errors++;
    else if (status < 200 || status >= 300) non2xx++;
    conn.busy = false;
    if (done === total) return finish();
    if (!conn.socket.destroyed) release(conn);
  };

  /** Gives a free connection the oldest waiting request, or parks it. */
  const release = (conn: Conn) => {
    const next = queue.shift();
    if (next !== undefined) send(conn, next);
    else idle.push(conn);
  };

  const send = (conn: Conn, intendedAt: number) => {
    conn.busy = true;
    conn.intendedAt = intendedAt;
    conn.socket.write(request);
  };

  const conns = new Set<Conn>();
  /** Opens a keep-alive connection; one the server closes is replaced, and its request counted as failed. */
  const open = () =>
    new Promise<Conn>((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
      const conn: Conn = { socket, busy: false, intendedAt: 0, buffer: Buffer.alloc(0) };
      conns.add(conn);
      socket.once('connect', () => resolve(conn));
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        conn.buffer = conn.buffer.length === 0 ? chunk : Buffer.concat([conn.buffer, chunk]);
        for (;;) {
          const headEnd = conn.buffer.indexOf('\r\n\r\n');
          if (headEnd === -1) return;
          const head = conn.buffer.subarray(0, headEnd).toString('latin1');
          const status = Number(head.slice(9, 12));
          const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!length) throw new Error(`the benchmark needs responses with Content-Length, got:\n${head}`);
          const end = headEnd + 4 + Number(length[1]);
          if (conn.buffer.length < end) return;
          conn.buffer = conn.buffer.subarray(end);
          complete(conn, true, status);
        }
      });
      socket.once('close', () => {
        conns.delete(conn);
        const at = idle.indexOf(conn);
        if (at !== -1) idle.splice(at, 1);
        if (conn.busy) complete(conn, false, 0);
        if (done < total) open().then(release, () => {});
      });
    });

  for (const conn of await Promise.all(Array.from({ length: options.connections }, open))) idle.push(conn);

  const start = performance.now();
  const interval = 1000 / options.rate;
  let scheduled = 0;
  // Fire every request whose time has come; a timer cannot wake every 1 ms precisely, so each
  // wake-up catches up on the schedule, and latency still counts from the intended time.
  const tick = () => {
    const now = performance.now();
    while (scheduled < total && start + scheduled * interval <= now) {
      const intendedAt = start + scheduled * interval;
      scheduled++;
      const conn = idle.pop();
      if (conn) send(conn, intendedAt);
      else queue.push(intendedAt);
    }
    if (scheduled < total) setTimeout(tick, Math.max(0, start + scheduled * interval - performance.now()));
  };
  tick();
  await finished;
  const elapsed = performance.now() - start;
  for (const conn of conns) conn.socket.destroy();
  return { latenciesMs: latencies, errors, non2xx, achievedRate: (total * 1000) / elapsed };
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}
