// Certificate lifetimes on the command line, written as `step` and Go write durations (8760h, 90m,
// 1h30m) plus days and years (365d, 10y), because certificate lifetimes are long.
import { DURATION_UNIT_MS, parseDuration } from '../api/quantity.js';

const LIFETIME_UNIT_MS: Record<string, number> = { ...DURATION_UNIT_MS, d: 86_400_000, y: 365 * 86_400_000 };

/** Milliseconds in a lifetime such as `8760h`, `1h30m` or `10y`; throws a message naming the text. */
export function parseLifetime(text: string): number {
  const ms = parseDuration(text, LIFETIME_UNIT_MS);
  if (ms === undefined) throw new Error(`"${text}" is not a duration (use e.g. 8760h, 90m, 1h30m, 365d or 10y)`);
  if (ms <= 0) throw new Error(`"${text}" is not a positive duration (use e.g. 8760h, 365d or 10y)`);
  return Math.round(ms);
}

/** A readable rendering, largest fitting unit first: 10y, 365d, 24h, 1h30m, 5s. */
export function formatLifetime(ms: number): string {
  const parts: string[] = [];
  let rest = Math.round(ms / 1000) * 1000;
  for (const unit of ['y', 'd', 'h', 'm', 's'] as const) {
    const n = Math.floor(rest / LIFETIME_UNIT_MS[unit]!);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * LIFETIME_UNIT_MS[unit]!;
    if (parts.length === 2) break;
  }
  return parts.length === 0 ? `${ms}ms` : parts.join('');
}
