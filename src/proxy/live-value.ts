// What a discovery stream holds for its watches: the latest value, a wait for the first one, and
// change listeners. It keeps the last value whatever happens to the stream (static stability).
import type { ConnectError } from '@connectrpc/connect';

/** A value that arrives over time: the latest one, a wait for the first, and change listeners. */
export class LiveValue<T> {
  private value: T | undefined;
  private lastError: ConnectError | undefined;
  private readonly listeners = new Set<(value: T) => void>();
  private readonly waiters = new Set<(value: T) => void>();

  constructor(private readonly what: string) {}

  current(): T | undefined {
    return this.value;
  }

  set(value: T): void {
    this.value = value;
    for (const resolve of this.waiters) resolve(value);
    this.waiters.clear();
    for (const listener of this.listeners) listener(value);
  }

  failed(err: ConnectError): void {
    this.lastError = err;
  }

  watchApi() {
    return {
      current: () => this.value,
      ready: (timeoutMs: number) => this.ready(timeoutMs),
      onUpdate: (listener: (value: T) => void) => {
        this.listeners.add(listener);
        return () => void this.listeners.delete(listener);
      },
    };
  }

  private ready(timeoutMs: number): Promise<T> {
    if (this.value !== undefined) return Promise.resolve(this.value);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        const why = this.lastError ? `: ${this.lastError.message}` : '';
        reject(new Error(`no answer from the control plane about the ${this.what} within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      const done = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      this.waiters.add(done);
    });
  }
}
