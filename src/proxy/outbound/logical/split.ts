// Traffic splitting: a destination's weighted backends (the service itself, or the backends of its
// SMI TrafficSplit), one chosen per request by weight among those that can serve it. A backend
// that does not exist or has no ready endpoint is skipped, so its share goes to the others.

export interface WeightedChoice {
  weight: number;
}

/**
 * Picks one of `usable` with probability proportional to its weight; `random` is uniform in
 * [0, 1). Zero-weight backends never get traffic. Undefined when no weight is left.
 */
export function pickWeighted<B extends WeightedChoice>(usable: readonly B[], totalWeight: number, random: () => number): B | undefined {
  if (totalWeight <= 0) return undefined;
  if (usable.length === 1) return usable[0];
  let point = random() * totalWeight;
  for (const backend of usable) {
    if (backend.weight <= 0) continue;
    point -= backend.weight;
    if (point < 0) return backend;
  }
  // Rounding can leave a sliver past the last backend: it belongs to the last one with weight.
  for (let i = usable.length - 1; i >= 0; i--) if (usable[i]!.weight > 0) return usable[i];
  return undefined;
}

/** The backends that can take traffic and their total weight, computed once per destination update. */
export function usableBackends<B extends WeightedChoice>(backends: readonly B[], canServe: (backend: B) => boolean): { usable: B[]; totalWeight: number } {
  const usable = backends.filter((b) => b.weight > 0 && Number.isFinite(b.weight) && canServe(b));
  return { usable, totalWeight: usable.reduce((sum, b) => sum + b.weight, 0) };
}
