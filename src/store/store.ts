// The one interface every control-plane part uses to read and write a cluster's resources.
// Implementations: the local store (memory + files, src/store/local.ts) and, later, Kubernetes.
import type { LabelSelector, Resource, ResourceRef } from '../api/types.js';

export interface ListOptions {
  namespace?: string;
  labelSelector?: string | LabelSelector;
}

export interface ListResult {
  items: Resource[];
  /** The store's resourceVersion at the time of the list: watch from here to miss nothing. */
  resourceVersion: string;
}

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

export interface ApplyResult {
  outcome: ApplyOutcome;
  object: Resource;
}

/** A ref to delete, optionally only if the object is still at `resourceVersion` (optimistic concurrency). */
export interface DeleteRef extends ResourceRef {
  resourceVersion?: string;
}

export interface DeleteResult {
  ref: ResourceRef;
  /** False when the object did not exist. */
  deleted: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  type: WatchEventType;
  /** For DELETED, the object as it was last. */
  object: Resource;
}

/**
 * An object whose labels change so that it leaves (enters) the selector arrives as DELETED (ADDED),
 * as a Kubernetes watch delivers it.
 */
export interface WatchOptions extends ListOptions {
  /** Only this kind; all kinds when absent. */
  kind?: string;
  /**
   * Deliver every change after this version. When the store no longer holds history that old,
   * the watch fails with `ExpiredError` and the caller lists again.
   * Absent: changes from now on.
   */
  resourceVersion?: string;
}

export interface Watch {
  stop(): void;
}

/** A resourceVersion older than the history the store keeps (HTTP 410 in Kubernetes). */
export class ExpiredError extends Error {
  override name = 'ExpiredError';
}

/** A write that was refused: a conflict or a precondition that does not hold. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** A write to an object that does not exist (HTTP 404 in Kubernetes). */
export class NotFoundError extends ConflictError {
  override name = 'NotFoundError';
}

export interface Store {
  get(ref: ResourceRef): Promise<Resource | undefined>;
  list(kind: string, opts?: ListOptions): Promise<ListResult>;
  /**
   * Creates or replaces (metadata labels/annotations, spec) each object. Atomic: every object is
   * written, or, if any write fails, none is. Status, uid and creationTimestamp are kept.
   * A `metadata.resourceVersion` in an object is a precondition: ConflictError unless it is the
   * stored one (as a Kubernetes update is); leave it out to write unconditionally.
   */
  apply(objects: Resource[]): Promise<ApplyResult[]>;
  /**
   * Replaces the status of an existing object (not its spec); bumps its resourceVersion unless the
   * status is unchanged. NotFoundError when the object does not exist.
   */
  updateStatus(ref: ResourceRef, status: unknown): Promise<Resource>;
  /** Deletes each object atomically (a failed precondition deletes none). */
  delete(refs: DeleteRef[]): Promise<DeleteResult[]>;
  /**
   * Calls `onEvent` for each change, in order; when it returns a promise, the next event waits for
   * it. `onError` if the watch ends abnormally (it then delivers nothing more).
   */
  watch(opts: WatchOptions, onEvent: (e: WatchEvent) => void | Promise<void>, onError?: (err: Error) => void): Watch;
  close(): Promise<void>;
}
