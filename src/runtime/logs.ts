// Serving a pod's log file: the last N lines, and following it as it grows.
import { createReadStream, existsSync, readFileSync, statSync, watch } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';

/** The file from `start` on, then whatever is appended, until the reader goes away. */
function followFrom(file: string, start: number): Readable {
  const out = new PassThrough();
  let offset = start;
  let reading = false;
  const pump = (): void => {
    if (reading || out.destroyed) return;
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return;
    }
    if (size < offset) offset = 0; // truncated: start over
    if (size === offset) return;
    reading = true;
    const chunk = createReadStream(file, { start: offset, end: size - 1 });
    chunk.on('data', (d) => out.write(d));
    chunk.on('end', () => {
      offset = size;
      reading = false;
      pump();
    });
  };
  const watcher = watch(file, pump);
  // fs.watch can miss events on some file systems; a slow poll backs it up.
  const timer = setInterval(pump, 500);
  out.on('close', () => {
    watcher.close();
    clearInterval(timer);
  });
  pump();
  return out;
}

function tailStart(file: string, lines: number): number {
  const text = readFileSync(file);
  let pos = text.length;
  if (pos > 0 && text[pos - 1] === 0x0a) pos--;
  for (let seen = 0; pos > 0; pos--) {
    if (text[pos - 1] === 0x0a && ++seen === lines) break;
  }
  return lines <= 0 ? text.length : pos;
}

export function readLog(file: string, opts: { follow: boolean; tail?: number }): Readable | undefined {
  if (!existsSync(file)) return undefined;
  const start = opts.tail === undefined ? 0 : tailStart(file, opts.tail);
  if (opts.follow) return followFrom(file, start);
  return createReadStream(file, { start });
}
