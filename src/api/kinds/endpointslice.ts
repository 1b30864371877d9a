// discovery.k8s.io/v1 EndpointSlice: endpoints of a Service that its selector does not find. Strait
// reads them beside the pods a Service selects; the link controller writes them for the mirrors of
// other clusters' services, each endpoint reached through its cluster's gateway.
import { isIP } from 'node:net';
import { z } from 'zod';
import { dns1123LabelError } from '../names.js';
import type { Resource } from '../types.js';
import { checkPort, checkUnique, defineKind, Integer, objectSchema, Protocol } from './define.js';

/** The label naming the Service a slice belongs to, as Kubernetes names it. */
export const SLICE_SERVICE_LABEL = 'kubernetes.io/service-name';
/** The label naming the controller that writes a slice. */
export const SLICE_MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';

const EndpointSchema = z.object({
  addresses: z.array(z.string()).min(1, { error: 'must have at least one address' }),
  conditions: z
    .object({
      /** Absent means ready, as Kubernetes reads it. */
      ready: z.boolean().optional(),
      serving: z.boolean().optional(),
      terminating: z.boolean().optional(),
    })
    .optional(),
  hostname: z.string().optional(),
  targetRef: z.object({ kind: z.string().optional(), name: z.string().optional(), namespace: z.string().optional(), uid: z.string().optional() }).optional(),
  nodeName: z.string().optional(),
  zone: z.string().optional(),
});

const EndpointPortSchema = z.object({
  /** Matches the Service port of the same name (`''` for an unnamed one). */
  name: z.string().optional(),
  port: Integer.optional(),
  protocol: Protocol,
  appProtocol: z.string().optional(),
});

const EndpointSliceSchema = objectSchema({
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: z.array(EndpointSchema).default([]),
  ports: z.array(EndpointPortSchema).optional(),
});

export type SliceEndpoint = z.output<typeof EndpointSchema>;
export type SlicePort = z.output<typeof EndpointPortSchema>;
/** An EndpointSlice's fields sit beside its metadata, not under `spec`. */
export type EndpointSlice = Resource<never, never> & {
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: SliceEndpoint[];
  ports?: SlicePort[];
};

/** True when a slice endpoint takes traffic (Kubernetes reads an absent `ready` as true). */
export function isSliceEndpointReady(endpoint: SliceEndpoint): boolean {
  return endpoint.conditions?.ready !== false;
}

export const endpointSliceKind = defineKind({
  group: 'discovery.k8s.io',
  kind: 'EndpointSlice',
  plural: 'endpointslices',
  shortNames: [],
  namespaced: true,
  versions: ['v1'],
  nameRule: 'dns1123-subdomain',
  kubernetes: {
    openApiType: 'V1EndpointSlice',
    model: async () => (await import('kubernetes-models/discovery.k8s.io/v1/EndpointSlice')).EndpointSlice,
  },
  schema: EndpointSliceSchema,
  check: (slice, report) => {
    slice.endpoints.forEach((endpoint, i) => {
      endpoint.addresses.forEach((address, j) => {
        const family = isIP(address);
        const expected = slice.addressType === 'IPv4' ? 4 : slice.addressType === 'IPv6' ? 6 : 0;
        if (expected !== 0 && family !== expected) report(['endpoints', i, 'addresses', j], `${JSON.stringify(address)} is not an ${slice.addressType} address`);
      });
      if (endpoint.hostname !== undefined) {
        const error = dns1123LabelError(endpoint.hostname);
        if (error) report(['endpoints', i, 'hostname'], `${JSON.stringify(endpoint.hostname)} ${error}`);
      }
    });
    (slice.ports ?? []).forEach((port, i) => {
      if (port.port !== undefined) checkPort(port.port, ['ports', i, 'port'], report);
    });
    checkUnique((slice.ports ?? []).map((p) => p.name ?? ''), ['ports'], 'name', 'port name', report);
  },
});
