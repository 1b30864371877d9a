// A Resolver over a table the caller fills: for tests, benchmarks, and a proxy run without a
// control plane. Names are looked up by host (the port of the authority is ignored); a name not in
// the table is answered "no such service".
import type { Destination, DestinationWatch, Resolver } from './destinations.js';
import { splitAuthority } from './transport/headers.js';

export type StaticDestination = Omit<Destination, 'authority'>;

export class StaticResolver implements Resolver {
  private readonly table = new Map<string, StaticDestination>();
  private readonly listeners = new Map<string, Set<(d: Destination) => void>>();

  constructor(entries: Record<string, StaticDestination> = {}) {
    for (const [name, destination] of Object.entries(entries)) this.table.set(name, destination);
  }

  /** Publishes `destination` under `name` (a host), updating the watches of it. */
  set(name: string, destination: StaticDestination): void {
    this.table.set(name, destination);
    for (const listener of this.listeners.get(name) ?? []) listener({ ...destination, authority: name });
  }

  lookup(name: string): Destination {
    const host = splitAuthority(name).host;
    const known = this.table.get(host);
    return { authority: name, ...(known ?? { exists: false, ports: [], backends: [], loadBalancer: 'ewma', version: '0' }) };
  }

  watch(name: string): DestinationWatch {
    const host = splitAuthority(name).host;
    let listeners = this.listeners.get(host);
    if (!listeners) this.listeners.set(host, (listeners = new Set()));
    const mine = new Set<(d: Destination) => void>();
    return {
      current: () => this.lookup(name),
      ready: () => Promise.resolve(this.lookup(name)),
      onUpdate: (listener) => {
        const wrapped = (d: Destination) => listener({ ...d, authority: name });
        listeners.add(wrapped);
        mine.add(wrapped);
        return () => {
          listeners.delete(wrapped);
          mine.delete(wrapped);
        };
      },
      close: () => {
        for (const l of mine) listeners.delete(l);
      },
    };
  }

  close(): void {
    this.listeners.clear();
  }
}
