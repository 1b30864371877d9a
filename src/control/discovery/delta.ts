// Incremental updates: what a caller holds (by revision) against what discovery now answers.
import { create } from '@bufbuild/protobuf';
import {
  EndpointChangesSchema,
  EndpointKeySchema,
  ResolveResponseSchema,
  type EndpointChanges,
  type ResolveResponse,
  type Resume,
} from '../../api/gen/strait/discovery/v1/discovery_pb.js';
import { endpointKey, type DestinationState } from './compute.js';

/** An endpoint as far as updates need it: where it is and its revision. */
interface HeldEndpoint {
  address: string;
  port: number;
  revision: string;
}

/** What a caller holds: the destination's revision and each endpoint's, by backend and endpoint key. */
export interface Held {
  destinationRevision: string;
  endpoints: ReadonlyMap<string, ReadonlyMap<string, HeldEndpoint>>;
}

/** What a caller holds once it has `state` (no copy: states are never changed in place). */
export function heldOf(state: DestinationState): Held {
  return { destinationRevision: state.info.revision, endpoints: state.endpoints };
}

/** What a resuming caller says it holds. */
export function heldFromResume(resume: Resume): Held {
  const endpoints = new Map<string, Map<string, HeldEndpoint>>();
  for (const e of resume.endpoints) {
    let backend = endpoints.get(e.backend);
    if (!backend) endpoints.set(e.backend, (backend = new Map<string, HeldEndpoint>()));
    backend.set(endpointKey(e.address, e.port), e);
  }
  return { destinationRevision: resume.destinationRevision, endpoints };
}

/**
 * The update that brings a caller holding `held` to `next`: the whole of `next` flagged as a reset
 * when it holds nothing, else only what differs. `version` is left for the caller to set.
 */
export function updateFrom(held: Held | undefined, next: DestinationState): ResolveResponse {
  const update = create(ResolveResponseSchema, { reset: held === undefined });
  if (!held || held.destinationRevision !== next.info.revision) update.destination = next.info;
  for (const [backend, endpoints] of next.endpoints) {
    const before = held?.endpoints.get(backend);
    const changes: EndpointChanges = create(EndpointChangesSchema, { backend });
    for (const [key, endpoint] of endpoints) {
      if (before?.get(key)?.revision !== endpoint.revision) changes.added.push(endpoint);
    }
    for (const [key, gone] of before ?? []) {
      if (!endpoints.has(key)) changes.removed.push(create(EndpointKeySchema, { address: gone.address, port: gone.port }));
    }
    if (changes.added.length > 0 || changes.removed.length > 0) update.endpoints.push(changes);
  }
  return update;
}

/** True when the update changes nothing (a reset always changes something: it replaces). */
export function isEmptyUpdate(update: ResolveResponse): boolean {
  return !update.reset && update.destination === undefined && update.endpoints.length === 0;
}
