// The single-writer lock of a store directory: a file `lock` holding the owner's pid.
import { UserError } from '../api/errors.js';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export class StoreLockedError extends UserError {
  override name = 'StoreLockedError';

  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`store ${dir} is locked by process ${pid}`);
  }
}

export interface DirectoryLock {
  release(): Promise<void>;
}

const TAKEOVER_ATTEMPTS = 5;

/**
 * Takes the lock of `dir`, or throws StoreLockedError when a live process holds it. A lock left by
 * a dead process is taken over (with a warning).
 */
export async function lockDirectory(dir: string, warn: (message: string) => void): Promise<DirectoryLock> {
  const lockPath = join(dir, 'lock');
  // The lock appears with its content in one step (a hard link fails like O_EXCL when the lock
  // exists), so a reader never sees an empty lock that a live process is still writing.
  const draft = `${lockPath}.${process.pid}.tmp`;
  await writeFile(draft, `${process.pid}\n`);
  try {
    for (let attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
      try {
        await link(draft, lockPath);
        return { release: () => releaseLock(lockPath) };
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err;
      }
      const holder = await readHolder(lockPath);
      if (holder === null) continue; // released meanwhile: try again
      if (holder !== undefined && isAlive(holder)) throw new StoreLockedError(dir, holder);
      // Stale. Move it aside rather than unlink it, and look at what was moved: another process
      // may have taken the stale lock over between our read and the move.
      const aside = `${lockPath}.stale.${process.pid}`;
      try {
        await rename(lockPath, aside);
      } catch (err) {
        if (isCode(err, 'ENOENT')) continue;
        throw err;
      }
      const moved = await readHolder(aside);
      if (moved !== holder && moved !== null && moved !== undefined && isAlive(moved)) {
        await link(aside, lockPath).catch(() => undefined);
        await unlink(aside);
        throw new StoreLockedError(dir, moved);
      }
      await unlink(aside);
      warn(`store ${dir}: took over the lock left by process ${holder ?? '(unreadable)'}, which is no longer running`);
    }
    throw new Error(`store ${dir}: could not take the lock ${lockPath} after ${TAKEOVER_ATTEMPTS} attempts`);
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}

async function releaseLock(lockPath: string): Promise<void> {
  if ((await readHolder(lockPath)) === process.pid) await unlink(lockPath);
}

/** The pid in a lock file; null when there is no file, undefined when it names no process. */
async function readHolder(path: string): Promise<number | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return isCode(err, 'EPERM');
  }
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
