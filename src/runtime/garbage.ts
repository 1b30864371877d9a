// Cascading deletion, as Kubernetes' namespace controller and garbage collector do it: a deleted
// Namespace takes every object in it along, and an object whose owners are all gone is deleted.
import { isNamespaced, KINDS } from '../api/kinds.js';
import type { OwnerReference, Resource, ResourceRef } from '../api/types.js';
import { refOf } from '../api/types.js';
import { ConflictError, type Store } from '../store/store.js';

/** The namespaced kinds Strait defines. */
export function namespacedKinds(): string[] {
  return KINDS.filter((k) => k.namespaced).map((k) => k.kind);
}

async function objectsIn(store: Store, namespace: string, kinds: Iterable<string>): Promise<Resource[]> {
  const lists = await Promise.all([...kinds].map((kind) => store.list(kind, { namespace })));
  return lists.flatMap((l) => l.items);
}

/** Deletes every object of `kinds` in `namespace`; returns the refs deleted. */
export async function purgeNamespace(store: Store, namespace: string, kinds: Iterable<string>): Promise<ResourceRef[]> {
  const refs = (await objectsIn(store, namespace, kinds)).map(refOf);
  const results = await store.delete(refs);
  return results.filter((r) => r.deleted).map((r) => r.ref);
}

/** Deletes the objects of `kinds` in `namespace` that have owners, none of which still exists. */
export async function collectGarbage(store: Store, namespace: string, kinds: Iterable<string>): Promise<ResourceRef[]> {
  const objects = await objectsIn(store, namespace, kinds);
  const present = new Set(objects.map((o) => o.metadata.uid));
  const orphans: Resource[] = [];
  for (const object of objects) {
    const owners = object.metadata.ownerReferences ?? [];
    if (owners.length === 0) continue;
    let ownerLeft = false;
    for (const owner of owners) ownerLeft ||= present.has(owner.uid) || (await ownerExists(store, namespace, owner));
    if (!ownerLeft) orphans.push(object);
  }
  if (orphans.length === 0) return [];
  // Only if unchanged since read: an object given a new owner meanwhile is no orphan.
  const results = await Promise.all(
    orphans.map((o) =>
      store.delete([{ ...refOf(o), resourceVersion: o.metadata.resourceVersion }]).catch((err: unknown) => {
        if (err instanceof ConflictError) return [];
        throw err;
      }),
    ),
  );
  return results.flat().filter((r) => r.deleted).map((r) => r.ref);
}

/** An owner of another kind than those listed, or a cluster-scoped one, is looked up by name and uid. */
async function ownerExists(store: Store, namespace: string, owner: OwnerReference): Promise<boolean> {
  const ref: ResourceRef = isNamespaced(owner.kind) ? { kind: owner.kind, namespace, name: owner.name } : { kind: owner.kind, name: owner.name };
  const found = await store.get(ref);
  return found?.metadata.uid === owner.uid;
}
