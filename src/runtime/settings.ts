// Settings `strait up` keeps in mesh.json beside each cluster: the address other clusters reach its
// gateway at, its region, and the mesh-wide namespace sameness. All of a command's settings are
// checked before mesh.json is written, so a bad one changes nothing.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseHostPort } from '../api/kinds/strait.js';
import { dns1123LabelError } from '../api/names.js';
import { DEFAULT_GATEWAY_PORT } from '../gateway/router.js';
import { clusterAddresses, MAX_CLUSTER_INDEX } from './addresses.js';
import { HomeError, type ClusterEntry, type MeshFile } from './home.js';

/**
 * What the user gave `strait up`. Per-cluster values are `cluster=value`; a bare value is for every
 * cluster the command names (the gateway address: only when it names one); an empty value goes back
 * to the default.
 */
export interface SettingFlags {
  gatewayAddress?: string[];
  region?: string[];
  sameness?: boolean;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** The gateway's own address in the cluster's loopback block. */
export function defaultGatewayAddress(index: number): string {
  return `${clusterAddresses(index).gateway}:${DEFAULT_GATEWAY_PORT}`;
}

/** Where other clusters reach the cluster's gateway: what its mesh API advertises and `strait link` puts in Links. */
export function advertisedGatewayAddress(entry: ClusterEntry): string {
  return entry.gatewayAddress ?? defaultGatewayAddress(entry.index);
}

/**
 * Where the gateway listens: on its advertised address when that is an address of this machine (of
 * the network namespace the control plane runs in), else on its default address — the advertised
 * one then belongs to a NAT or a floating IP in front of the machine.
 */
export function gatewayListenAddress(entry: ClusterEntry, isLocal: (host: string) => boolean = isLocalAddress): ListenAddress {
  const fallback = { host: clusterAddresses(entry.index).gateway, port: DEFAULT_GATEWAY_PORT };
  if (entry.gatewayAddress === undefined) return fallback;
  const advertised = parseHostPort(entry.gatewayAddress);
  if (!advertised) {
    throw new HomeError(
      `mesh.json: cluster ${entry.name} has gatewayAddress ${JSON.stringify(entry.gatewayAddress)}, which is not host:port; set it with: strait up --gateway-address ${entry.name}=HOST:PORT`,
    );
  }
  return isLocal(advertised.host) ? advertised : fallback;
}

/** An IP address this machine can listen on: any of 127.0.0.0/8 (all routed to `lo`) or an interface's. */
export function isLocalAddress(host: string): boolean {
  if (isIP(host) === 4 && host.startsWith('127.')) return true;
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === host));
}

/**
 * Applies the flags to the mesh (its new clusters included), or throws naming the flag and the
 * reason. `names`: the clusters the command names; none means every cluster of the mesh.
 */
export function applySettings(mesh: MeshFile, names: string[], flags: SettingFlags): void {
  const targets = names.length > 0 ? names : mesh.clusters.map((c) => c.name);
  const addresses = perCluster(mesh, targets, flags.gatewayAddress, { flag: '--gateway-address', oneForAll: false, example: 'cluster1=10.0.0.1:4143' });
  const regions = perCluster(mesh, targets, flags.region, { flag: '--region', oneForAll: true, example: 'cluster1=us-east-1' });
  for (const [cluster, { value, given }] of addresses) {
    const problem = value === '' ? undefined : gatewayAddressProblem(value, mesh.clusters.find((c) => c.name === cluster)!);
    if (problem) throw new HomeError(`--gateway-address ${given}: ${problem}`);
  }
  for (const [, { value, given }] of regions) {
    const problem = value === '' ? undefined : dns1123LabelError(value);
    if (problem) throw new HomeError(`--region ${given}: the region ${problem}`);
  }
  for (const c of mesh.clusters) {
    setOrClear(c, 'gatewayAddress', addresses.get(c.name)?.value);
    setOrClear(c, 'region', regions.get(c.name)?.value);
  }
  checkGatewaysDistinct(mesh, addresses);
  if (flags.sameness !== undefined) mesh.sameness = flags.sameness;
}

interface Given {
  value: string;
  /** The flag's value as the user wrote it, for messages. */
  given: string;
}

function perCluster(
  mesh: MeshFile,
  targets: string[],
  values: string[] | undefined,
  how: { flag: string; oneForAll: boolean; example: string },
): Map<string, Given> {
  const out = new Map<string, Given>();
  for (const given of values ?? []) {
    const eq = given.indexOf('=');
    const named = eq >= 0 ? given.slice(0, eq) : undefined;
    const value = eq >= 0 ? given.slice(eq + 1) : given;
    let clusters = targets;
    if (named !== undefined) {
      if (!mesh.clusters.some((c) => c.name === named)) {
        const known = mesh.clusters.map((c) => c.name);
        throw new HomeError(
          `${how.flag} ${given}: there is no cluster "${named}" in --clusters or in the mesh${known.length > 0 ? ` (${known.join(', ')})` : ''}; name it in --clusters to create it`,
        );
      }
      clusters = [named];
    } else if (!how.oneForAll && targets.length !== 1) {
      throw new HomeError(
        `${how.flag} ${given}: ${targets.length === 0 ? 'there is no cluster to give it to' : `one value cannot serve ${targets.length} clusters (${targets.join(', ')})`}; give each its own, e.g. ${how.flag} ${how.example}`,
      );
    }
    for (const cluster of clusters) {
      const earlier = out.get(cluster);
      if (earlier && earlier.value !== value) throw new HomeError(`${how.flag}: cluster ${cluster} is given both ${earlier.given} and ${given}; give one`);
      out.set(cluster, { value, given });
    }
  }
  return out;
}

function gatewayAddressProblem(value: string, entry: ClusterEntry): string | undefined {
  const parsed = parseHostPort(value);
  if (!parsed) {
    const port = /:(\d+)$/.exec(value)?.[1];
    if (port !== undefined && /^(\[[^\]]*\]|[^:]+):\d+$/.test(value) && (Number(port) < 1 || Number(port) > 65535)) {
      return `port ${port} is out of range: it must be from 1 to 65535`;
    }
    return 'must be host:port, e.g. 10.0.0.1:4143 (an IPv6 host in brackets: [fd00::1]:4143)';
  }
  if (parsed.host === '0.0.0.0' || (isIP(parsed.host) === 6 && /^[0:]+$/.test(parsed.host))) {
    return `${parsed.host} is the unspecified address; give the address other clusters connect to`;
  }
  // The runtime's loopback blocks belong to clusters' control planes and pods.
  const octets = isIP(parsed.host) === 4 ? parsed.host.split('.').map(Number) : undefined;
  const blockIndex = octets?.[0] === 127 ? octets[1]! - 20 : -1;
  if (blockIndex >= 0 && blockIndex <= MAX_CLUSTER_INDEX && parsed.host !== clusterAddresses(entry.index).gateway) {
    return `${parsed.host} lies in ${clusterAddresses(blockIndex).cidr}, a block the local runtime gives clusters' control planes and pods; give an address outside 127.20.0.0–127.255.255.255`;
  }
  return undefined;
}

/** No two clusters may advertise one gateway address. Clusters the flags changed come last, so the message names their flag. */
function checkGatewaysDistinct(mesh: MeshFile, given: Map<string, Given>): void {
  const owner = new Map<string, string>();
  const ordered = [...mesh.clusters].sort((a, b) => Number(given.has(a.name)) - Number(given.has(b.name)));
  for (const c of ordered) {
    const address = advertisedGatewayAddress(c);
    const other = owner.get(address.toLowerCase());
    if (other !== undefined) {
      const flag = given.get(c.name)?.given;
      throw new HomeError(
        flag !== undefined
          ? `--gateway-address ${flag}: ${address} is already the gateway address of ${other}; every cluster needs its own`
          : `mesh.json: clusters ${other} and ${c.name} both have the gateway address ${address}; give one another with: strait up --gateway-address ${c.name}=HOST:PORT`,
      );
    }
    owner.set(address.toLowerCase(), c.name);
  }
}

function setOrClear(entry: ClusterEntry, field: 'gatewayAddress' | 'region', value: string | undefined): void {
  if (value === undefined) return;
  if (value === '') delete entry[field];
  else entry[field] = value;
}
