// How the CLI prints: kubectl-style tables, -o json|yaml, ages, and colour only on a terminal.
import Table from 'cli-table3';
import type { Ora } from 'ora';
import pc from 'picocolors';

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name';

export const OUTPUT_FORMATS: OutputFormat[] = ['wide', 'json', 'yaml', 'name'];

/** A table with no borders, columns separated by three spaces, as kubectl prints. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head: headers,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: '   ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

/** Kubernetes' short ages: 45s, 3m12s, 5h, 2d3h, 40d. */
export function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 8 ? `${d}d${h % 24 ? `${h % 24}h` : ''}` : `${d}d`;
}

export const colour = {
  ok: (s: string) => pc.green(s),
  bad: (s: string) => pc.red(s),
  warn: (s: string) => pc.yellow(s),
  dim: (s: string) => pc.dim(s),
  bold: (s: string) => pc.bold(s),
};

/** Progress for anything slower than a second; silent when stderr is not a terminal. */
export async function spinner(text: string): Promise<Ora> {
  // Loaded here: only slow commands need it, and every command pays for what it imports.
  const { default: ora } = await import('ora');
  return ora({
    text,
    stream: process.stderr,
    // A terminal that reports no width (some pseudo-terminals) would make ora clear lines forever.
    isSilent: !process.stderr.isTTY || !process.stderr.columns,
    // ora's raw-mode stdin swallows Ctrl-C on Node 20; the terminal's own Ctrl-C must reach the command.
    discardStdin: false,
  }).start();
}
