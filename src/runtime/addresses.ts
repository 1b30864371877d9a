// Loopback addresses of the local runtime. Linux routes all of 127.0.0.0/8 to `lo`, so every
// address in it can be bound without root: cluster i owns 127.(20+i).0.0/16, which gives every
// pod its own address and lets every replica listen on the same containerPort.

const FIRST_SECOND_OCTET = 20;
/** Cluster indexes whose block still fits in 127.0.0.0/8. */
export const MAX_CLUSTER_INDEX = 255 - FIRST_SECOND_OCTET;

/** The control plane's Connect port (identity and discovery), on its address, as Linkerd's destination port. */
export const CONTROL_PLANE_PORT = 8086;

export interface ClusterAddresses {
  /** The cluster's block, e.g. `127.20.0.0/16`. */
  cidr: string;
  controlPlane: string;
  gateway: string;
  /** The first address handed to a pod. */
  firstPod: string;
}

export function clusterAddresses(clusterIndex: number): ClusterAddresses {
  const prefix = blockPrefix(clusterIndex);
  return { cidr: `${prefix}.0.0/16`, controlPlane: `${prefix}.0.1`, gateway: `${prefix}.0.2`, firstPod: `${prefix}.1.1` };
}

/** `127.20` for cluster 0: the first two octets of every address in the cluster's block. */
export function blockPrefix(clusterIndex: number): string {
  if (!Number.isInteger(clusterIndex) || clusterIndex < 0 || clusterIndex > MAX_CLUSTER_INDEX) {
    throw new RangeError(`cluster index ${clusterIndex} is out of range: it must be an integer from 0 to ${MAX_CLUSTER_INDEX}`);
  }
  return `127.${FIRST_SECOND_OCTET + clusterIndex}`;
}

// Pod addresses are 127.B.x.y with x in 1..255 and y in 1..254 (no .0 or .255 host part, so every
// address looks like an ordinary host address). Slot n ↔ x = 1 + n / 254, y = 1 + n % 254.
const HOSTS_PER_ROW = 254;
const POD_SLOTS = 255 * HOSTS_PER_ROW;

/**
 * Hands out pod addresses of one cluster's block. It goes round the block rather than reusing the
 * lowest free address, so an address just freed (whose old process may still be exiting) is the
 * last to be handed out again.
 */
export class PodAddressAllocator {
  private readonly prefix: string;
  private readonly used = new Set<number>();
  private next = 0;

  /** `inUse`: addresses already held (the podIP of existing Pod objects); others are ignored. */
  constructor(clusterIndex: number, inUse: Iterable<string> = []) {
    this.prefix = blockPrefix(clusterIndex);
    for (const address of inUse) this.reserve(address);
  }

  /** Marks an address as taken; false when it is not a pod address of this cluster. */
  reserve(address: string): boolean {
    const slot = this.slotOf(address);
    if (slot === undefined) return false;
    this.used.add(slot);
    this.next = Math.max(this.next, (slot + 1) % POD_SLOTS);
    return true;
  }

  allocate(): string {
    if (this.used.size >= POD_SLOTS) throw new Error(`no free pod address left in ${this.prefix}.0.0/16`);
    while (this.used.has(this.next)) this.next = (this.next + 1) % POD_SLOTS;
    const slot = this.next;
    this.used.add(slot);
    this.next = (slot + 1) % POD_SLOTS;
    return this.addressOf(slot);
  }

  release(address: string): void {
    const slot = this.slotOf(address);
    if (slot !== undefined) this.used.delete(slot);
  }

  has(address: string): boolean {
    const slot = this.slotOf(address);
    return slot !== undefined && this.used.has(slot);
  }

  get size(): number {
    return this.used.size;
  }

  private addressOf(slot: number): string {
    return `${this.prefix}.${1 + Math.floor(slot / HOSTS_PER_ROW)}.${1 + (slot % HOSTS_PER_ROW)}`;
  }

  private slotOf(address: string): number | undefined {
    if (!address.startsWith(this.prefix + '.')) return undefined;
    const m = /^(\d{1,3})\.(\d{1,3})$/.exec(address.slice(this.prefix.length + 1));
    if (!m) return undefined;
    const x = Number(m[1]);
    const y = Number(m[2]);
    if (x < 1 || x > 255 || y < 1 || y > HOSTS_PER_ROW) return undefined;
    return (x - 1) * HOSTS_PER_ROW + (y - 1);
  }
}
