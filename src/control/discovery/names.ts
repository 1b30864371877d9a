// The names a proxy may ask discovery about, read as Kubernetes DNS reads them from a pod: a bare
// name is a service in the caller's namespace, `svc.ns` a service in namespace ns (the search path
// `<ns>.svc.<domain>` makes it so), and `svc.ns.svc[.<cluster domain>]` the full forms. The
// clusterset names of the Multi-Cluster Services API are read too: `svc.ns.svc.clusterset.local`
// and, for one endpoint of a headless service, `<hostname>.<cluster>.svc.ns.svc.clusterset.local`.
import { CLUSTERSET_DOMAIN } from '../../api/global.js';
import { isDns1035Label, isDns1123Label } from '../../api/names.js';

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** A service (and maybe one of its ports) that a name stands for. */
export interface ServiceTarget {
  namespace: string;
  service: string;
  /** The port the name carries; absent when it carries none. */
  port?: number;
  /** True for a clusterset name (`<svc>.<ns>.svc.clusterset.local`): the ServiceImport answers it. */
  clusterset?: true;
  /** For `<hostname>.<cluster>.<svc>.<ns>.svc.clusterset.local`: the one endpoint it names. */
  instance?: { hostname: string; cluster: string };
}

/** What a name is: a service target, or why it cannot be one. */
export type ParsedName = { target: ServiceTarget } | { problem: string };

/**
 * Reads `name` (a request's authority) as a service name. `callerNamespace` completes a bare name.
 * A name that is well formed but not in a service form (`example.com.`, an IP address) is a problem
 * too: nothing in the cluster answers to it.
 */
export function parseServiceName(name: string, callerNamespace: string, clusterDomain = DEFAULT_CLUSTER_DOMAIN): ParsedName {
  const split = splitHostPort(name);
  if ('problem' in split) return split;
  const host = split.host.toLowerCase().replace(/\.$/, '');
  if (host.endsWith(`.svc.${CLUSTERSET_DOMAIN}`) && clusterDomain !== CLUSTERSET_DOMAIN) return parseClustersetName(name, host, split.port);
  const labels = host.split('.');
  const [service, namespace = callerNamespace, svc, ...domain] = labels;
  if (labels.length >= 3 && (svc !== 'svc' || (labels.length > 3 && domain.join('.') !== clusterDomain))) {
    return { problem: `"${name}" is not a service name: expected <service>[.<namespace>[.svc[.${clusterDomain}]]] or <service>.<namespace>.svc.${CLUSTERSET_DOMAIN}` };
  }
  if (service === undefined || !isDns1035Label(service)) return { problem: `"${name}" is not a service name: "${service ?? ''}" is not a valid service name` };
  if (!isDns1123Label(namespace)) return { problem: `"${name}" is not a service name: "${namespace}" is not a valid namespace name` };
  return { target: split.port === undefined ? { namespace, service } : { namespace, service, port: split.port } };
}

/** `svc.ns.svc.clusterset.local` or `hostname.cluster.svc.ns.svc.clusterset.local` (host lower-cased, no trailing dot). */
function parseClustersetName(name: string, host: string, port: number | undefined): ParsedName {
  const labels = host.slice(0, -`.svc.${CLUSTERSET_DOMAIN}`.length).split('.');
  if (labels.length !== 2 && labels.length !== 4) {
    return { problem: `"${name}" is not a clusterset name: expected <service>.<namespace>.svc.${CLUSTERSET_DOMAIN} or <hostname>.<cluster>.<service>.<namespace>.svc.${CLUSTERSET_DOMAIN}` };
  }
  const [service, namespace] = labels.slice(-2) as [string, string];
  if (!isDns1035Label(service)) return { problem: `"${name}" is not a service name: "${service}" is not a valid service name` };
  if (!isDns1123Label(namespace)) return { problem: `"${name}" is not a service name: "${namespace}" is not a valid namespace name` };
  const target: ServiceTarget = { namespace, service, ...(port === undefined ? {} : { port }), clusterset: true };
  if (labels.length === 2) return { target };
  const [hostname, cluster] = labels as [string, string];
  if (!isDns1123Label(hostname)) return { problem: `"${name}" is not a clusterset name: "${hostname}" is not a valid hostname` };
  if (!isDns1123Label(cluster)) return { problem: `"${name}" is not a clusterset name: "${cluster}" is not a valid cluster name` };
  return { target: { ...target, instance: { hostname, cluster } } };
}

function splitHostPort(name: string): { host: string; port?: number } | { problem: string } {
  if (name === '') return { problem: 'the name is empty' };
  const colon = name.lastIndexOf(':');
  if (colon === -1) return { host: name };
  const host = name.slice(0, colon);
  const portText = name.slice(colon + 1);
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) return { problem: `"${name}" has an invalid port "${portText}": expected 1-65535` };
  if (host === '' || host.includes(':')) return { problem: `"${name}" is not a service name` };
  return { host, port };
}

/** `helloworld.sample.svc.cluster.local`: how a service is named in answers. */
export function serviceFqdn(namespace: string, service: string, clusterDomain = DEFAULT_CLUSTER_DOMAIN): string {
  return `${service}.${namespace}.svc.${clusterDomain}`;
}

/** The name a target is answered under: its cluster-local or clusterset name (with the instance's hostname and cluster). */
export function targetFqdn(target: ServiceTarget, clusterDomain = DEFAULT_CLUSTER_DOMAIN): string {
  if (!target.clusterset) return serviceFqdn(target.namespace, target.service, clusterDomain);
  const instance = target.instance ? `${target.instance.hostname}.${target.instance.cluster}.` : '';
  return `${instance}${serviceFqdn(target.namespace, target.service, CLUSTERSET_DOMAIN)}`;
}
