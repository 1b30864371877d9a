// The names a proxy may ask discovery about, read as Kubernetes DNS reads them from a pod: a bare
// name is a service in the caller's namespace, `svc.ns` a service in namespace ns (the search path
// `<ns>.svc.<domain>` makes it so), and `svc.ns.svc[.<cluster domain>]` the full forms.
import { isDns1035Label, isDns1123Label } from '../../api/names.js';

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** A service (and maybe one of its ports) that a name stands for. */
export interface ServiceTarget {
  namespace: string;
  service: string;
  /** The port the name carries; absent when it carries none. */
  port?: number;
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
  const labels = host.split('.');
  const [service, namespace = callerNamespace, svc, ...domain] = labels;
  if (labels.length >= 3 && (svc !== 'svc' || (labels.length > 3 && domain.join('.') !== clusterDomain))) {
    return { problem: `"${name}" is not a service name: expected <service>[.<namespace>[.svc[.${clusterDomain}]]]` };
  }
  if (service === undefined || !isDns1035Label(service)) return { problem: `"${name}" is not a service name: "${service ?? ''}" is not a valid service name` };
  if (!isDns1123Label(namespace)) return { problem: `"${name}" is not a service name: "${namespace}" is not a valid namespace name` };
  return { target: split.port === undefined ? { namespace, service } : { namespace, service, port: split.port } };
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
