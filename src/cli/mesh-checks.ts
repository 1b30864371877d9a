// What `strait apply` checks against the mesh it applies to, which a manifest alone cannot say:
// that the clusters and regions a Service's annotations name exist. The clusters are those in
// mesh.json and those the target cluster is linked to; the regions are mesh.json's.
import { FAILOVER_ANNOTATION, parseNameList } from '../api/global.js';
import { MULTICLUSTER_NAMESPACE } from '../api/kinds/strait.js';
import type { Resource } from '../api/types.js';
import { readMesh } from '../runtime/home.js';
import type { TargetContext } from './context.js';
import type { ObjectProblem } from './manifests.js';

/** The clusters and regions an annotation may name. */
export interface MeshNames {
  clusters: string[];
  regions: string[];
}

/**
 * A check for `readManifests` (`ReadOptions.check`). The target cluster's links are read only when
 * a name is not in mesh.json (a cluster of another machine's mesh may be linked).
 */
export function meshCheck(ctx: TargetContext): (object: Resource) => Promise<ObjectProblem[]> {
  // A Kubernetes cluster has no mesh.json: the clusters it knows are those it is linked to.
  const mesh = ctx.home !== undefined ? readMesh(ctx.home) : { clusters: [] as { name: string; region?: string }[] };
  const local: MeshNames = {
    clusters: mesh.clusters.map((c) => c.name),
    regions: [...new Set(mesh.clusters.flatMap((c) => (c.region ? [c.region] : [])))],
  };
  let withLinks: Promise<MeshNames> | undefined;
  const linked = () =>
    (withLinks ??= ctx.client.list('Link', { namespace: MULTICLUSTER_NAMESPACE }).then((links) => ({
      ...local,
      clusters: [...new Set([...local.clusters, ...links.items.map((l) => l.metadata.name)])],
    })));
  return async (object) => {
    const problems = serviceMeshProblems(object, local);
    return problems.length === 0 ? problems : serviceMeshProblems(object, await linked());
  };
}

/** The problems of one object against the names the mesh knows. */
export function serviceMeshProblems(object: Resource, names: MeshNames): ObjectProblem[] {
  if (object.kind !== 'Service') return [];
  const annotations = object.metadata.annotations ?? {};
  const problems: ObjectProblem[] = [];
  // Failover names clusters or regions to prefer, in order: each must be one or the other.
  const failover = annotations[FAILOVER_ANNOTATION];
  const parsed = failover === undefined ? undefined : parseNameList(failover);
  if (parsed && 'names' in parsed) {
    for (const name of parsed.names) {
      if (names.clusters.includes(name) || names.regions.includes(name)) continue;
      problems.push({ path: ['metadata', 'annotations', FAILOVER_ANNOTATION], reason: `${name} is neither a cluster nor a region of this mesh (${describeNames(names)})` });
    }
  }
  // Further annotations that name clusters (selective export) are checked here, beside failover.
  return problems;
}

function describeNames(names: MeshNames): string {
  const list = (items: string[]) => (items.length > 0 ? items.join(', ') : 'none');
  return `clusters: ${list(names.clusters)}; regions: ${list(names.regions)}`;
}
