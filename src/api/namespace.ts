// Filling in namespaces, as `kubectl apply -n NS` does.
import { describeRef, refOf, type Resource } from './types.js';
import { isNamespaced } from './kinds.js';

export const DEFAULT_NAMESPACE = 'default';

/** A document names a namespace other than the one given on the command line. */
export class NamespaceMismatchError extends Error {
  constructor(
    readonly resource: Resource,
    readonly requested: string,
  ) {
    const own = resource.metadata.namespace!;
    super(
      `${describeRef(refOf(resource))}: the namespace from the provided object "${own}" does not match the namespace "${requested}". ` +
        `You must pass '--namespace=${own}' to perform this operation.`,
    );
    this.name = 'NamespaceMismatchError';
  }
}

/**
 * Returns copies of `resources` with `metadata.namespace` set on every namespaced object: the one it
 * names, else `namespace`, else "default". Cluster-scoped objects (Namespace) lose any namespace.
 * Throws `NamespaceMismatchError` when `namespace` is given and an object names a different one.
 */
export function applyNamespace(resources: readonly Resource[], namespace?: string): Resource[] {
  return resources.map((resource) => {
    const { name, namespace: own, ...rest } = resource.metadata;
    if (!isNamespaced(resource.kind)) return { ...resource, metadata: { name, ...rest } };
    if (namespace !== undefined && own !== undefined && own !== namespace) throw new NamespaceMismatchError(resource, namespace);
    return { ...resource, metadata: { name, namespace: own ?? namespace ?? DEFAULT_NAMESPACE, ...rest } };
  });
}
