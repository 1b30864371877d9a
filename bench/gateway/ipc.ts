// The messages between the benchmark's driver and its processes (sink, load, gateway), over the
// IPC channel of child_process.fork: the driver asks, the process answers once per request.
import type { ChildProcess } from 'node:child_process';

export interface Reply {
  id: number;
  error?: string;
  [key: string]: unknown;
}

let nextId = 0;

/** Sends `message` to `child` and resolves with its reply. */
export function ask<T>(child: ChildProcess, message: Record<string, unknown>): Promise<T> {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    const onMessage = (reply: Reply) => {
      if (reply.id !== id) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (reply.error) reject(new Error(reply.error));
      else resolve(reply as T);
    };
    const onExit = (code: number | null) => reject(new Error(`the process exited (${code}) before answering ${String(message.op)}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send({ ...message, id });
  });
}

/** In a forked process: answers each request with what `handle` returns (or the error it throws). */
export function serve(handle: (message: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>): void {
  process.on('message', (message: Record<string, unknown> & { id: number }) => {
    Promise.resolve()
      .then(() => handle(message))
      .then(
        (reply) => process.send!({ ...reply, id: message.id }),
        (err: Error) => process.send!({ id: message.id, error: err.stack ?? err.message }),
      );
  });
}
