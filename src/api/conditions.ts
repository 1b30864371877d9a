// Status conditions as Kubernetes writes them (metav1.Condition): a type, a status, a reason and a
// message, and when the status last changed.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** A CamelCase word a program may match on (`PortConflict`). */
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** A condition to set; its transition time is filled in by `withCondition`. */
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

/**
 * `conditions` with `update` set in place of any of its type. The transition time moves only when
 * the status changes, so writing the same condition again changes nothing.
 */
export function withCondition(conditions: readonly Condition[] | undefined, update: ConditionUpdate, now: () => string = () => new Date().toISOString()): Condition[] {
  const list = conditions ?? [];
  const before = list.find((c) => c.type === update.type);
  const next: Condition = { ...update, lastTransitionTime: before && before.status === update.status ? before.lastTransitionTime : now() };
  return before ? list.map((c) => (c === before ? next : c)) : [...list, next];
}

/** `conditions` without the one of `type`. */
export function withoutCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** The condition of `type`, if set. */
export function conditionOf(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
