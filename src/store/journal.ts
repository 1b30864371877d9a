// The files of a persistent store: `snapshot.json` (every object at one resourceVersion) and
// `log.jsonl` (the transactions committed since, one checksummed JSON line each).
//
// Crash safety: a transaction is acknowledged only after its line is on disk (fdatasync). A crash
// can leave at most the unacknowledged end of the log torn; on open it is cut off with a warning.
// Compaction writes a new snapshot beside the old one, syncs it, renames it over the old one and
// only then empties the log; records the snapshot already holds are skipped on replay, so a crash
// between those steps loses nothing.
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Resource, ResourceRef } from '../api/types.js';

export class StoreCorruptError extends Error {
  override name = 'StoreCorruptError';
}

export type LoggedOp = { put: Resource } | { delete: ResourceRef; resourceVersion: string };

export interface LoggedTransaction {
  ops: LoggedOp[];
}

export interface Recovered {
  /** The snapshot's resourceVersion: `transactions` follow it. */
  snapshotVersion: number;
  objects: Resource[];
  transactions: LoggedTransaction[];
}

export interface JournalOptions {
  warn: (message: string) => void;
  /** The log is compacted once it is this big and bigger than the snapshot. */
  compactLogBytes: number;
}

const SNAPSHOT_FORMAT = 1;
// A log line is `{"crc":"<8 hex digits>","tx":<transaction JSON>}`: fixed framing, so the checksum
// covers the exact bytes of the transaction and reading needs no re-serialization.
const RECORD_PREFIX = /^\{"crc":"([0-9a-f]{8})","tx":/;
const RECORD_PREFIX_LENGTH = '{"crc":"00000000","tx":'.length;

export function opVersion(op: LoggedOp): number {
  return Number('put' in op ? op.put.metadata.resourceVersion : op.resourceVersion);
}

export class Journal {
  private compactAt: number;

  private constructor(
    private readonly dir: string,
    private readonly log: FileHandle,
    private logBytes: number,
    snapshotBytes: number,
    private readonly options: JournalOptions,
  ) {
    this.compactAt = Math.max(options.compactLogBytes, snapshotBytes);
  }

  private static paths(dir: string) {
    return { snapshot: join(dir, 'snapshot.json'), draft: join(dir, 'snapshot.json.tmp'), log: join(dir, 'log.jsonl') };
  }

  /** Opens (creating if needed) the files in `dir` and reads back what they hold. */
  static async open(dir: string, options: JournalOptions): Promise<{ journal: Journal; recovered: Recovered }> {
    const paths = Journal.paths(dir);
    await rm(paths.draft, { force: true }); // an unfinished compaction
    const snapshot = await readSnapshot(paths.snapshot);
    const logText = await readIfExists(paths.log);
    const { transactions, validBytes } = parseLog(paths.log, logText ?? Buffer.alloc(0), snapshot.version, options.warn);
    const log = await open(paths.log, 'a');
    try {
      if (logText === undefined) await syncDirectory(dir);
      if (logText !== undefined && validBytes < logText.length) {
        // Cut the torn end off now, or the next record would follow it and look corrupt later.
        await log.truncate(validBytes);
        await log.datasync();
      }
    } catch (err) {
      await log.close();
      throw err;
    }
    const journal = new Journal(dir, log, validBytes, snapshot.bytes, options);
    return { journal, recovered: { snapshotVersion: snapshot.version, objects: snapshot.objects, transactions } };
  }

  /** Appends the transactions as one write and returns once they are on disk. */
  async append(transactions: LoggedTransaction[]): Promise<void> {
    const text = transactions.map(encodeRecord).join('');
    await this.log.appendFile(text);
    await this.log.datasync();
    this.logBytes += Buffer.byteLength(text);
  }

  /** True when the log has grown past its share and `compact` should run (amortized O(1) per write). */
  get needsCompaction(): boolean {
    return this.logBytes >= this.compactAt;
  }

  /** Replaces the snapshot with `objects` at `resourceVersion` (everything committed) and empties the log. */
  async compact(resourceVersion: number, objects: Iterable<Resource>): Promise<void> {
    const text = JSON.stringify({ format: SNAPSHOT_FORMAT, resourceVersion: String(resourceVersion), objects: [...objects] });
    const bytes = Buffer.byteLength(text);
    // Should this attempt fail, try again only after as much more log again.
    this.compactAt = this.logBytes + Math.max(this.options.compactLogBytes, bytes);
    const paths = Journal.paths(this.dir);
    const draft = await open(paths.draft, 'w');
    try {
      await draft.writeFile(text);
      await draft.sync();
    } finally {
      await draft.close();
    }
    await rename(paths.draft, paths.snapshot);
    await syncDirectory(this.dir);
    await this.log.truncate(0);
    await this.log.datasync();
    this.logBytes = 0;
    this.compactAt = Math.max(this.options.compactLogBytes, bytes);
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}

function encodeRecord(tx: LoggedTransaction): string {
  const body = JSON.stringify(tx);
  return `{"crc":"${crc32(body).toString(16).padStart(8, '0')}","tx":${body}}\n`;
}

/** The transaction in one log line, or why the line is not one. */
function decodeRecord(line: string): LoggedTransaction | string {
  const m = RECORD_PREFIX.exec(line);
  if (!m || !line.endsWith('}')) return 'not a log record';
  const body = line.slice(RECORD_PREFIX_LENGTH, -1);
  if (crc32(body).toString(16).padStart(8, '0') !== m[1]) return 'checksum mismatch';
  let tx: LoggedTransaction;
  try {
    tx = JSON.parse(body) as LoggedTransaction;
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  if (!Array.isArray(tx?.ops) || tx.ops.length === 0) return 'a record without operations';
  return tx;
}

/**
 * The transactions after `snapshotVersion` and how many leading bytes of the log are sound. An
 * invalid record with nothing valid after it is the torn end of a crash and is dropped with a
 * warning; one followed by valid records is corruption and fails.
 */
function parseLog(
  path: string,
  text: Buffer,
  snapshotVersion: number,
  warn: (message: string) => void,
): { transactions: LoggedTransaction[]; validBytes: number } {
  const transactions: LoggedTransaction[] = [];
  let version = snapshotVersion;
  let offset = 0;
  for (let lineNumber = 1; offset < text.length; lineNumber++) {
    const end = text.indexOf(0x0a, offset);
    const decoded = end === -1 ? 'no line end' : decodeRecord(text.toString('utf8', offset, end));
    if (typeof decoded === 'string') {
      if (end !== -1 && validRecordFollows(text, end + 1)) {
        throw new StoreCorruptError(`${path} line ${lineNumber}: ${decoded}, and valid records follow it: the log is corrupt`);
      }
      warn(`${path} line ${lineNumber}: ignored an unfinished record (${decoded}, ${text.length - offset} bytes), left by a crash during a write that was never acknowledged`);
      break;
    }
    // Records the snapshot already holds (a crash during compaction left them) are skipped.
    if (opVersion(decoded.ops.at(-1)!) > snapshotVersion) {
      for (const op of decoded.ops) {
        if (opVersion(op) !== ++version) {
          throw new StoreCorruptError(`${path} line ${lineNumber}: resourceVersion ${opVersion(op)} where ${version} was expected: the log is corrupt`);
        }
      }
      transactions.push(decoded);
    }
    offset = end + 1;
  }
  return { transactions, validBytes: offset };
}

function validRecordFollows(text: Buffer, from: number): boolean {
  for (let offset = from; offset < text.length; ) {
    const end = text.indexOf(0x0a, offset);
    if (end === -1) return false;
    if (typeof decodeRecord(text.toString('utf8', offset, end)) !== 'string') return true;
    offset = end + 1;
  }
  return false;
}

async function readSnapshot(path: string): Promise<{ version: number; objects: Resource[]; bytes: number }> {
  const text = await readIfExists(path);
  if (text === undefined) return { version: 0, objects: [], bytes: 0 };
  let parsed: { format?: unknown; resourceVersion?: unknown; objects?: unknown };
  try {
    parsed = JSON.parse(text.toString('utf8')) as typeof parsed;
  } catch (err) {
    throw new StoreCorruptError(`${path}: invalid JSON (${(err as Error).message})`);
  }
  if (parsed?.format !== SNAPSHOT_FORMAT) throw new StoreCorruptError(`${path}: unknown snapshot format ${JSON.stringify(parsed?.format)}`);
  if (typeof parsed.resourceVersion !== 'string' || !/^\d+$/.test(parsed.resourceVersion)) {
    throw new StoreCorruptError(`${path}: resourceVersion is not a decimal string`);
  }
  if (!Array.isArray(parsed.objects)) throw new StoreCorruptError(`${path}: objects is not a list`);
  return { version: Number(parsed.resourceVersion), objects: parsed.objects as Resource[], bytes: text.length };
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Makes a file created or renamed in `dir` survive a power loss. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
