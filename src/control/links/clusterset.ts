// The clusterset controller, one per control plane: from this cluster's Services and ServiceExports
// and the member slices its link controllers write, it keeps a ServiceImport for every service with
// a member anywhere (imports.ts says what it holds), deletes those with no member left, and reports
// in status conditions what users must know: conflicting definitions (on the Service, the
// ServiceExport and the ServiceImport), a ServiceExport without its Service (KEP-1645's Valid,
// Conflict and Ready), and `strait.dev/export-to` naming clusters that have no link.
//
// It works as a Kubernetes controller does: changes mark a service dirty, and a flush computes what
// every dirty service should look like and writes only what differs (compared by content), in
// batches — a thousand services cost a few transactions, and an unchanged one costs none.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { withCondition, withoutCondition, type Condition, type ConditionUpdate } from '../../api/conditions.js';
import { EXPORT_TO_ANNOTATION, MCS_SERVICE_NAME_LABEL, SERVICE_CONDITIONS } from '../../api/global.js';
import type { Service, ServiceExport, ServiceImport } from '../../api/kinds.js';
import type { EndpointSlice } from '../../api/kinds/endpointslice.js';
import { SERVICE_EXPORT_CONDITIONS } from '../../api/kinds/mcs.js';
import type { Secret } from '../../api/kinds/secret.js';
import { isMirror, MULTICLUSTER_NAMESPACE } from '../../api/kinds/strait.js';
import type { Resource, ResourceRef } from '../../api/types.js';
import { Informer } from '../../store/informer.js';
import { WorkQueue } from '../../store/queue.js';
import { NotFoundError, type Store } from '../../store/store.js';
import { revisionOf } from '../discovery/compute.js';
import { grantOf, LINKED_CLUSTER_LABEL } from '../mesh-api/credentials.js';
import { exportToCondition } from '../mesh-api/exports.js';
import { localMember, remoteMembers, resolve, serviceImportFor, type Conflict } from './imports.js';

/** Objects per store transaction. */
const BATCH = 500;
const RETRY_MS = { initialMs: 1000, maxMs: 1000 };

export interface ClustersetOptions {
  store: Store;
  /** This cluster's name. */
  cluster: string;
  log: Logger;
}

/** A status to write: the object's ref and its whole new status (undefined: none). */
interface StatusWrite {
  ref: ResourceRef;
  status: unknown;
}

type WithConditions = Record<string, unknown> & { conditions?: Condition[] };

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** What a ServiceImport says, apart from what the store adds and its status. */
function importContent(object: ServiceImport): string {
  const { labels, annotations } = object.metadata;
  return revisionOf([labels ?? {}, annotations ?? {}, object.spec]);
}

export class ClustersetController {
  private readonly services: Informer<Service>;
  private readonly exports: Informer<ServiceExport>;
  private readonly imports: Informer<ServiceImport>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly grants: Informer<Secret>;
  /** Member slices by `namespace/service`, then by name. */
  private readonly slicesByService = new Map<string, Map<string, EndpointSlice>>();
  /** Services that carry export-to: their condition depends on the links as well. */
  private readonly exportTo = new Set<string>();
  private linked = new Set<string>();
  /** Services (`namespace/name`) whose import and conditions may differ from what they should be. */
  private readonly queue: WorkQueue<string>;

  constructor(private readonly options: ClustersetOptions) {
    const { store, log } = options;
    const warn = (message: string) => log.warn(`clusterset: ${message}`);
    const mark = (object: Resource | undefined) => object && this.mark(keyOf(object.metadata.namespace ?? '', object.metadata.name));
    this.services = new Informer<Service>({
      store,
      kind: 'Service',
      warn,
      onChange: (previous, current) => {
        const object = current ?? previous!;
        const key = keyOf(object.metadata.namespace ?? '', object.metadata.name);
        if (current?.metadata.annotations?.[EXPORT_TO_ANNOTATION] !== undefined) this.exportTo.add(key);
        else this.exportTo.delete(key);
        this.mark(key);
      },
    });
    this.exports = new Informer<ServiceExport>({ store, kind: 'ServiceExport', warn, onChange: (previous, current) => mark(current ?? previous) });
    this.imports = new Informer<ServiceImport>({ store, kind: 'ServiceImport', warn, onChange: (previous, current) => mark(current ?? previous) });
    this.slices = new Informer<EndpointSlice>({ store, kind: 'EndpointSlice', labelSelector: MCS_SERVICE_NAME_LABEL, warn, onChange: (previous, current) => this.indexSlice(previous, current) });
    this.grants = new Informer<Secret>({ store, kind: 'Secret', labelSelector: LINKED_CLUSTER_LABEL, warn, onChange: () => this.linksChanged() });
    this.queue = new WorkQueue({
      paused: true,
      retry: RETRY_MS,
      process: (keys) => this.flush(keys),
      onError: (err) => log.error({ err: err.message }, 'clusterset: writing ServiceImports or conditions failed; trying again'),
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.services.start(), this.exports.start(), this.imports.start(), this.slices.start(), this.grants.start()]);
    this.queue.start();
  }

  async stop(): Promise<void> {
    for (const informer of [this.services, this.exports, this.imports, this.slices, this.grants]) informer.stop();
    await this.queue.stop();
  }

  /** Resolves once every change heard so far is written (or failed and scheduled again). */
  async settled(): Promise<void> {
    await this.queue.settled();
  }

  private indexSlice(previous: EndpointSlice | undefined, current: EndpointSlice | undefined): void {
    for (const [slice, present] of [[previous, false], [current, true]] as const) {
      const service = slice?.metadata.labels?.[MCS_SERVICE_NAME_LABEL];
      if (!slice || service === undefined) continue;
      const key = keyOf(slice.metadata.namespace ?? '', service);
      let slices = this.slicesByService.get(key);
      if (present) {
        if (!slices) this.slicesByService.set(key, (slices = new Map<string, EndpointSlice>()));
        slices.set(slice.metadata.name, slice);
      } else if (slices?.delete(slice.metadata.name) && slices.size === 0) {
        this.slicesByService.delete(key);
      }
      this.mark(key);
    }
  }

  private linksChanged(): void {
    const linked = new Set<string>();
    for (const secret of this.grants.values()) {
      const grant = secret.metadata.namespace === MULTICLUSTER_NAMESPACE ? grantOf(secret) : undefined;
      if (grant) linked.add(grant.consumer);
    }
    if (isDeepStrictEqual(linked, this.linked)) return;
    this.linked = linked;
    for (const key of this.exportTo) this.mark(key);
  }

  private mark(key: string): void {
    this.queue.add(key);
  }

  private async flush(keys: string[]): Promise<void> {
    const applies: ServiceImport[] = [];
    const deletes: ResourceRef[] = [];
    const statuses: StatusWrite[] = [];
    for (const key of keys) this.reconcile(key, applies, deletes, statuses);
    const { store } = this.options;
    for (let i = 0; i < applies.length; i += BATCH) await store.apply(applies.slice(i, i + BATCH));
    // Concurrent writes share the store's commits.
    for (let i = 0; i < statuses.length; i += BATCH) {
      await Promise.all(
        statuses.slice(i, i + BATCH).map(async ({ ref, status }) => {
          try {
            await store.updateStatus(ref, status);
          } catch (err) {
            // Deleted meanwhile: its deletion is a change of its own.
            if (!(err instanceof NotFoundError)) throw err;
          }
        }),
      );
    }
    for (let i = 0; i < deletes.length; i += BATCH) await store.delete(deletes.slice(i, i + BATCH));
  }

  /** What one service should look like here, as writes of what differs. */
  private reconcile(key: string, applies: ServiceImport[], deletes: ResourceRef[], statuses: StatusWrite[]): void {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const service = this.services.get(namespace, name);
    const serviceExport = this.exports.get(namespace, name);
    const remote = remoteMembers(this.slicesByService.get(key)?.values() ?? []);
    const local = localMember(this.options.cluster, service, serviceExport, remote);
    const resolution = resolve(key, local ? [...remote, local] : remote);
    const conflict = local ? resolution?.conflict : undefined;

    const current = this.imports.get(namespace, name);
    const importRef = { kind: 'ServiceImport', namespace, name };
    if (resolution) {
      const desired = serviceImportFor(namespace, name, resolution);
      if (!current || importContent(current) !== importContent(desired)) applies.push(desired);
      const conditions = resolution.conflict ? withCondition(current?.status?.conditions, conflictCondition(SERVICE_EXPORT_CONDITIONS.conflict, resolution.conflict)) : [];
      const status = { clusters: resolution.clusters.map((cluster) => ({ cluster })), ...(conditions.length > 0 ? { conditions } : {}) };
      if (!isDeepStrictEqual(current?.status, status)) statuses.push({ ref: importRef, status });
    } else if (current) {
      deletes.push(importRef);
    }

    if (service && !isMirror(service)) {
      const before = service.status as WithConditions | undefined;
      let conditions = before?.conditions;
      conditions = conflict ? withCondition(conditions, conflictCondition(SERVICE_CONDITIONS.conflict, conflict)) : withoutCondition(conditions, SERVICE_CONDITIONS.conflict);
      const exportTo = exportToCondition(service, this.linked, this.options.cluster);
      conditions = exportTo ? withCondition(conditions, exportTo) : withoutCondition(conditions, SERVICE_CONDITIONS.exportTo);
      this.writeConditions({ kind: 'Service', namespace, name }, before, conditions, statuses);
    }

    if (serviceExport) {
      const before = serviceExport.status as WithConditions | undefined;
      let conditions = before?.conditions;
      const valid = validity(namespace, name, service);
      conditions = withCondition(conditions, valid);
      conditions = withCondition(
        conditions,
        conflict
          ? conflictCondition(SERVICE_EXPORT_CONDITIONS.conflict, conflict)
          : { type: SERVICE_EXPORT_CONDITIONS.conflict, status: 'False', reason: 'NoConflicts', message: 'every linked cluster that exports the service defines it alike' },
      );
      conditions = withCondition(
        conditions,
        valid.status === 'True'
          ? { type: SERVICE_EXPORT_CONDITIONS.ready, status: 'True', reason: 'Exported', message: 'offered to linked clusters through the mesh API' }
          : { type: SERVICE_EXPORT_CONDITIONS.ready, status: 'False', reason: 'Pending', message: `waiting for Service ${namespace}/${name} to be exportable` },
      );
      this.writeConditions({ kind: 'ServiceExport', namespace, name }, before, conditions, statuses);
    }
  }

  /** Queues a status write when `conditions` differ from those in `before` (the rest of the status kept). */
  private writeConditions(ref: ResourceRef, before: WithConditions | undefined, conditions: Condition[], statuses: StatusWrite[]): void {
    if (isDeepStrictEqual(before?.conditions ?? [], conditions)) return;
    const { conditions: _old, ...rest } = before ?? {};
    const status = conditions.length > 0 ? { ...rest, conditions } : rest;
    statuses.push({ ref, status: Object.keys(status).length > 0 ? status : undefined });
  }
}

function conflictCondition(type: string, conflict: Conflict): ConditionUpdate {
  return { type, status: 'True', reason: conflict.reason, message: conflict.message };
}

/** KEP-1645's Valid condition: the ServiceExport names a Service that exists and can be exported. */
function validity(namespace: string, name: string, service: Service | undefined): ConditionUpdate {
  const type = SERVICE_EXPORT_CONDITIONS.valid;
  if (!service || isMirror(service)) {
    return { type, status: 'False', reason: 'NoService', message: `there is no Service ${namespace}/${name} to export; create it, and the export follows` };
  }
  if (service.spec?.type === 'ExternalName') {
    return { type, status: 'False', reason: 'InvalidServiceType', message: `Service ${namespace}/${name} is of type ExternalName, which cannot be exported` };
  }
  return { type, status: 'True', reason: 'Valid', message: `Service ${namespace}/${name} is exported` };
}
