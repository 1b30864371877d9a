// Label selectors: the string form (`app=reviews,version in (v1,v2),!canary`) and the object form.
import type { LabelSelector, LabelSelectorRequirement } from './types.js';

export class SelectorSyntaxError extends Error {}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Parses a kubectl-style selector string into requirements. */
export function parseSelector(text: string): LabelSelectorRequirement[] {
  const out: LabelSelectorRequirement[] = [];
  for (const term of splitTerms(text)) {
    const t = term.trim();
    if (t === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = t.match(/^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const values = m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '');
      out.push({ key: checkKey(m[1]!, text), operator: m[2] === 'in' ? 'In' : 'NotIn', values });
    } else if ((m = t.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      const op = m[2] === '!=' ? 'NotIn' : 'In';
      out.push({ key: checkKey(m[1]!, text), operator: op, values: [m[3]!] });
    } else if ((m = t.match(/^!\s*(\S+)$/))) {
      out.push({ key: checkKey(m[1]!, text), operator: 'DoesNotExist' });
    } else if (KEY.test(t)) {
      out.push({ key: t, operator: 'Exists' });
    } else {
      throw new SelectorSyntaxError(`invalid label selector "${text}": cannot parse "${t}"`);
    }
  }
  return out;
}

function checkKey(key: string, text: string): string {
  if (!KEY.test(key)) throw new SelectorSyntaxError(`invalid label selector "${text}": "${key}" is not a valid label key`);
  return key;
}

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else cur += ch;
  }
  terms.push(cur);
  return terms;
}

/** The requirements of an object-form selector. */
export function selectorRequirements(sel: LabelSelector): LabelSelectorRequirement[] {
  const reqs: LabelSelectorRequirement[] = Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({
    key,
    operator: 'In' as const,
    values: [v],
  }));
  return reqs.concat(sel.matchExpressions ?? []);
}

export function matchesRequirements(labels: Record<string, string> | undefined, reqs: LabelSelectorRequirement[]): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.operator) {
      case 'In':
        return has && (r.values ?? []).includes(l[r.key]!);
      case 'NotIn':
        return !has || !(r.values ?? []).includes(l[r.key]!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
    }
  });
}

/** True when `labels` satisfy the selector (string or object form; empty selects everything). */
export function matchesSelector(labels: Record<string, string> | undefined, selector: string | LabelSelector | undefined): boolean {
  if (selector === undefined) return true;
  const reqs = typeof selector === 'string' ? parseSelector(selector) : selectorRequirements(selector);
  return matchesRequirements(labels, reqs);
}

/** The string form of an object-form selector (`app=reviews,version in (v1,v2),!canary`), as kubectl prints it. */
export function formatSelector(sel: LabelSelector): string {
  return selectorRequirements(sel)
    .map((r) => {
      const values = r.values ?? [];
      switch (r.operator) {
        case 'In':
          return values.length === 1 ? `${r.key}=${values[0]}` : `${r.key} in (${values.join(',')})`;
        case 'NotIn':
          return values.length === 1 ? `${r.key}!=${values[0]}` : `${r.key} notin (${values.join(',')})`;
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
      }
    })
    .join(',');
}
