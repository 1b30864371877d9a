// Kubernetes quantities (`500m`, `1`, `2Ki`) and Go durations (`300ms`, `1m30s`), as manifests write them.

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a quantity (`500m` → 0.5, `1k` → 1000, `1Ki` → 1024, a number → itself); undefined if it is not one. */
export function parseQuantity(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = QUANTITY.exec(value.trim());
  if (!m) return undefined;
  const mantissa = Number(m[1]);
  if (m[2] !== undefined) return mantissa * 10 ** Number(m[2].slice(1));
  return m[3] === undefined ? mantissa : mantissa * SUFFIX[m[3]]!;
}

/** Go's duration units, in milliseconds. */
export const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Milliseconds in a Go duration (`300ms`, `10s`, `1h30m`, `0`); undefined if the text is not one or
 * is negative. `units` may add units (certificate lifetimes also take days and years).
 */
export function parseDuration(text: string, units: Readonly<Record<string, number>> = DURATION_UNIT_MS): number | undefined {
  if (text === '0') return 0;
  // Longest unit names first, so `ms` is not read as `m`.
  const names = Object.keys(units).sort((a, b) => b.length - a.length);
  const part = new RegExp(`(\\d+\\.?\\d*|\\.\\d+)(${names.join('|')})`, 'y');
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    part.lastIndex = pos;
    const m = part.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * units[m[2]!]!;
    pos = part.lastIndex;
  }
  return pos === 0 ? undefined : total;
}
