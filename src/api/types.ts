// The shape every part of Strait speaks: Kubernetes-style objects.

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface ObjectMeta {
  name: string;
  /** Absent for cluster-scoped kinds (Namespace). */
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface Resource<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

/** Identifies one object; `namespace` is absent for cluster-scoped kinds. */
export interface ResourceRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export function refOf(r: Resource): ResourceRef {
  return r.metadata.namespace === undefined
    ? { kind: r.kind, name: r.metadata.name }
    : { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
}

/** `Kind ns/name` or `Kind name`, as messages print an object. */
export function describeRef(ref: ResourceRef): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}
