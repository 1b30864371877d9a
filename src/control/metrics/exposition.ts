// The Prometheus text exposition format (version 0.0.4), as proxies serve it on `/metrics`:
// `# HELP` / `# TYPE` lines, other comments, and samples `name{label="value",…} value [timestamp]`
// with label values escaped as `\\`, `\"` and `\n`.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

/** Label names to values. Null-prototype, since `__proto__` is a valid label name. */
export type Labels = Record<string, string>;

export interface Sample {
  name: string;
  labels: Labels;
  value: number;
  timestampMs?: number;
}

export interface Exposition {
  samples: Sample[];
  /** Family name → declared type, from the `# TYPE` lines. */
  types: Map<string, MetricType>;
}

export class ExpositionError extends Error {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set<string>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function emptyLabels(): Labels {
  return Object.create(null) as Labels;
}

/** Parses a whole exposition; throws ExpositionError naming the first bad line and why. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, MetricType>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    const trimmed = line.trimStart();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      readComment(trimmed, i + 1, types);
      continue;
    }
    samples.push(readSample(trimmed, i + 1));
  }
  return { samples, types };
}

function readComment(line: string, lineNo: number, types: Map<string, MetricType>): void {
  const words = line.slice(1).trim().split(/[ \t]+/);
  if (words[0] !== 'TYPE') return; // HELP text and free comments carry nothing we use
  const [, name, type, ...rest] = words;
  if (!name || !METRIC_NAME.test(name) || METRIC_NAME.exec(name)![0] !== name) throw new ExpositionError(lineNo, `# TYPE names no valid metric: "${line}"`);
  if (!type || !TYPES.has(type) || rest.length > 0) throw new ExpositionError(lineNo, `# TYPE ${name}: "${words.slice(2).join(' ')}" is not one of counter, gauge, histogram, summary, untyped`);
  if (types.has(name)) throw new ExpositionError(lineNo, `second # TYPE line for ${name}`);
  types.set(name, type as MetricType);
}

function readSample(line: string, lineNo: number): Sample {
  const nameMatch = METRIC_NAME.exec(line);
  if (!nameMatch) throw new ExpositionError(lineNo, `expected a metric name at "${line.slice(0, 40)}"`);
  const name = nameMatch[0];
  let pos = name.length;
  const labels = emptyLabels();
  if (line[pos] === '{') pos = readLabels(line, pos + 1, labels, lineNo);
  const rest = line.slice(pos);
  if (rest !== '' && !/^[ \t]/.test(rest)) throw new ExpositionError(lineNo, `unexpected "${rest[0]}" after ${name}`);
  const fields = rest.trim().split(/[ \t]+/).filter((f) => f !== '');
  if (fields.length === 0) throw new ExpositionError(lineNo, `${name} has no value`);
  if (fields.length > 2) throw new ExpositionError(lineNo, `${name}: unexpected "${fields.slice(2).join(' ')}" after the value and timestamp`);
  const value = parseValue(fields[0]!);
  if (value === undefined) throw new ExpositionError(lineNo, `${name}: "${fields[0]}" is not a number`);
  const sample: Sample = { name, labels, value };
  if (fields[1] !== undefined) {
    if (!/^-?\d+$/.test(fields[1])) throw new ExpositionError(lineNo, `${name}: timestamp "${fields[1]}" is not a whole number of milliseconds`);
    sample.timestampMs = Number(fields[1]);
  }
  return sample;
}

/** Reads `a="x",b="y"}` from `pos` (just after `{`) into `labels`; returns the position after `}`. */
function readLabels(line: string, pos: number, labels: Labels, lineNo: number): number {
  for (;;) {
    pos = skipBlanks(line, pos);
    if (line[pos] === '}') return pos + 1;
    const nameMatch = LABEL_NAME.exec(line.slice(pos));
    if (!nameMatch) throw new ExpositionError(lineNo, `expected a label name or "}" at column ${pos + 1}`);
    const labelName = nameMatch[0];
    pos = skipBlanks(line, pos + labelName.length);
    if (line[pos] !== '=') throw new ExpositionError(lineNo, `expected "=" after label ${labelName}`);
    pos = skipBlanks(line, pos + 1);
    if (line[pos] !== '"') throw new ExpositionError(lineNo, `the value of label ${labelName} must be in double quotes`);
    let value = '';
    pos++;
    for (;;) {
      const ch = line[pos];
      if (ch === undefined) throw new ExpositionError(lineNo, `the value of label ${labelName} is not closed with "`);
      if (ch === '"') break;
      if (ch === '\\') {
        const next = line[pos + 1];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new ExpositionError(lineNo, `label ${labelName}: invalid escape "\\${next ?? ''}" (only \\\\, \\" and \\n are allowed)`);
        pos += 2;
        continue;
      }
      value += ch;
      pos++;
    }
    if (Object.prototype.hasOwnProperty.call(labels, labelName)) throw new ExpositionError(lineNo, `label ${labelName} appears twice`);
    labels[labelName] = value;
    pos = skipBlanks(line, pos + 1);
    if (line[pos] === ',') pos++;
    else if (line[pos] !== '}') throw new ExpositionError(lineNo, `expected "," or "}" after the value of label ${labelName}`);
  }
}

function skipBlanks(line: string, pos: number): number {
  while (line[pos] === ' ' || line[pos] === '\t') pos++;
  return pos;
}

/** A sample value as Go's ParseFloat reads it: decimal or exponent notation, NaN, ±Inf. */
export function parseValue(text: string): number | undefined {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  if (/^[+]?inf(inity)?$/.test(lower)) return Infinity;
  if (/^-inf(inity)?$/.test(lower)) return -Infinity;
  return undefined;
}

export interface FamilyPart {
  family: string;
  type: MetricType;
  /** For histograms: which of the family's series this sample is. */
  part?: 'bucket' | 'sum' | 'count';
}

/**
 * The family a sample belongs to: a histogram `x` exposes `x_bucket`, `x_sum` and `x_count`;
 * any other sample is its own family. Samples without a `# TYPE` are untyped.
 */
export function familyOf(name: string, types: ReadonlyMap<string, MetricType>): FamilyPart {
  const own = types.get(name);
  if (own !== undefined) return { family: name, type: own };
  for (const part of ['bucket', 'sum', 'count'] as const) {
    const suffix = `_${part}`;
    if (!name.endsWith(suffix)) continue;
    const family = name.slice(0, -suffix.length);
    const type = types.get(family);
    if (type === 'histogram') return { family, type, part };
    if (type === 'summary' && part !== 'bucket') return { family, type, part };
  }
  return { family: name, type: 'untyped' };
}

/** A canonical key for a label set: sorted `name="value"` pairs. */
export function labelsKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}
