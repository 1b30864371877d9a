// Pods made from a Deployment's or StatefulSet's template: their names, labels and owner, as
// Kubernetes makes them.
import { randomInt } from 'node:crypto';
import { matchesSelector } from '../api/labels.js';
import type { LabelSelector, OwnerReference, Resource } from '../api/types.js';
import type { Pod, PodTemplateSpec } from './pod-types.js';

/** The characters Kubernetes uses in generated names: no vowels, no look-alikes (0/o, 1/l/i, 3/e). */
export const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** Each character of `text` mapped into the safe alphabet (Kubernetes' rand.SafeEncodeString). */
export function safeEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) out += SAFE_ALPHABET[text.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** JSON with object keys sorted, so that equal templates hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The `pod-template-hash` of a template, as Kubernetes forms it: a 32-bit FNV-1a hash of the
 * template, its decimal digits encoded in the safe alphabet (so usually 9 or 10 characters).
 */
export function templateHash(template: PodTemplateSpec): string {
  return safeEncode(String(fnv1a32(canonicalJson(template))));
}

/** `length` random characters of the safe alphabet, as in a generated name's suffix. */
function randomSuffix(length = 5): string {
  let out = '';
  for (let i = 0; i < length; i++) out += SAFE_ALPHABET[randomInt(SAFE_ALPHABET.length)];
  return out;
}

/** Kubernetes keeps a generated name's base to 58 characters, so base and suffix fit in 63. */
const MAX_GENERATE_BASE = 58;

/** `<deployment>-<pod-template-hash>-<5 random characters>`, avoiding the names in `taken`. */
export function deploymentPodName(deployment: string, hash: string, taken: ReadonlySet<string>): string {
  const base = `${deployment}-${hash}-`.slice(0, MAX_GENERATE_BASE);
  for (;;) {
    const name = base + randomSuffix();
    if (!taken.has(name)) return name;
  }
}

/** The ordinal of a StatefulSet's pod (`web-2` → 2), or undefined when the name is not one of its. */
export function podOrdinal(statefulSet: string, pod: string): number | undefined {
  if (!pod.startsWith(statefulSet + '-')) return undefined;
  const rest = pod.slice(statefulSet.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined;
}

/** The reference a pod carries to the Deployment or StatefulSet that made it. */
function controllerRef(owner: Resource): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid ?? '', controller: true };
}

/** The owner that controls an object, if any. */
export function controllerOf(object: Resource): OwnerReference | undefined {
  return object.metadata.ownerReferences?.find((r) => r.controller === true);
}

/**
 * Whether `owner` owns `pod`: the pod names it as its controller and still matches its selector
 * (a pod relabelled out of the selector is released, as Kubernetes releases it).
 */
export function ownsPod(owner: Resource<{ selector: LabelSelector }>, pod: Resource): boolean {
  return controllerOf(pod)?.uid === owner.metadata.uid && matchesSelector(pod.metadata.labels, owner.spec?.selector ?? {});
}

/** Whether `pod` names `owner` as its controller but has left its selector. */
export function releasedBy(owner: Resource<{ selector: LabelSelector }>, pod: Resource): boolean {
  return controllerOf(pod)?.uid === owner.metadata.uid && !ownsPod(owner, pod);
}

/** A pod from `owner`'s template, with extra labels and pod-spec fields. */
export function podFromTemplate(
  owner: Resource<{ template: PodTemplateSpec }>,
  name: string,
  extra: { labels?: Record<string, string>; spec?: { hostname?: string; subdomain?: string } } = {},
): Pod {
  const template = structuredClone(owner.spec!.template);
  const metadata: Pod['metadata'] = {
    name,
    namespace: owner.metadata.namespace ?? 'default',
    labels: { ...template.metadata?.labels, ...extra.labels },
    ownerReferences: [controllerRef(owner)],
  };
  if (template.metadata?.annotations) metadata.annotations = template.metadata.annotations;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      ...template.spec,
      // The defaults Kubernetes fills in.
      serviceAccountName: template.spec.serviceAccountName ?? 'default',
      restartPolicy: template.spec.restartPolicy ?? 'Always',
      terminationGracePeriodSeconds: template.spec.terminationGracePeriodSeconds ?? 30,
      ...extra.spec,
    },
  };
}
