// A separate process that uses a store, for the lock and crash tests.
//   hold <dir>                 open the store, print "ready", wait to be killed
//   write <dir> <namespace>    write a stream of transactions, printing each acknowledged one, until killed
//
// The stream: op s (s = 0, 1, 2, ...) is, for even s, one apply of three Items labelled tx=<s>
// plus the Counter `last` with spec.s = s; for odd s >= 3, one delete of the three Items of op s-3.
// Up to 8 ops are in flight at once, so the store commits several per log sync.
import { pathToFileURL } from 'node:url';
import { LocalStore } from '../../../src/store/local.js';
import type { Resource } from '../../../src/api/types.js';

const IN_FLIGHT = 8;

export function itemsOf(s: number, ns: string): Resource[] {
  return [0, 1, 2].map((i) => ({
    apiVersion: 'test.strait.dev/v1',
    kind: 'Item',
    metadata: { name: `tx-${s}-${i}`, namespace: ns, labels: { tx: String(s) } },
    spec: { s, i, padding: 'x'.repeat(200) },
  }));
}

export function counterOf(s: number, ns: string): Resource {
  return { apiVersion: 'test.strait.dev/v1', kind: 'Counter', metadata: { name: 'last', namespace: ns }, spec: { s } };
}

async function writeStream(store: LocalStore, ns: string): Promise<never> {
  const inFlight = new Set<Promise<void>>();
  for (let s = 0; ; s++) {
    let op: Promise<string> | undefined;
    if (s % 2 === 0) {
      op = store.apply([...itemsOf(s, ns), counterOf(s, ns)]).then((results) => JSON.stringify(results.map((r) => [r.object.metadata.uid, r.object.metadata.resourceVersion])));
    } else if (s >= 3) {
      op = store.delete(itemsOf(s - 3, ns).map((o) => ({ kind: o.kind, namespace: ns, name: o.metadata.name }))).then((results) => JSON.stringify(results.map((r) => r.deleted)));
    }
    if (!op) continue;
    const step = s;
    const tracked: Promise<void> = op.then((detail) => {
      process.stdout.write(`ack ${step} ${detail}\n`);
      inFlight.delete(tracked);
    });
    inFlight.add(tracked);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
  }
}

// Run as a program (the tests import the stream's definitions from here too).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [mode, dir, namespace = 'default'] = process.argv.slice(2);
  if (mode !== 'hold' && mode !== 'write') throw new Error(`unknown mode ${mode}`);
  const store = await LocalStore.open(dir!, { compactLogBytes: 16 * 1024, warn: (m) => process.stderr.write(`warning: ${m}\n`) });
  process.stdout.write('ready\n');
  if (mode === 'write') await writeStream(store, namespace);
  else setInterval(() => undefined, 60_000);
}
