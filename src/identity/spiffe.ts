// SPIFFE IDs as Strait writes them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
import { isDns1123Label, isDns1123Subdomain } from '../api/names.js';

/** The trust domain every cluster of a mesh shares unless told otherwise, as in Linkerd and Istio. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

// The SPIFFE spec allows lower-case letters, digits, '.', '-' and '_' in a trust domain.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** Why a trust domain is unusable, or undefined when it is fine. */
export function trustDomainProblem(trustDomain: string): string | undefined {
  if (trustDomain === '') return 'it is empty';
  if (trustDomain.length > 255) return 'it is longer than 255 characters';
  if (!TRUST_DOMAIN.test(trustDomain)) return "only lower-case letters, digits, '.', '-' and '_' are allowed (SPIFFE)";
  return undefined;
}

export interface WorkloadName {
  namespace: string;
  serviceAccount: string;
}

/** The SPIFFE ID of a service account; throws on names Kubernetes would not allow. */
export function spiffeId(trustDomain: string, workload: WorkloadName): string {
  const problem = trustDomainProblem(trustDomain);
  if (problem) throw new Error(`trust domain "${trustDomain}" is invalid: ${problem}`);
  if (!isDns1123Label(workload.namespace)) throw new Error(`namespace "${workload.namespace}" is not a valid DNS-1123 label`);
  if (!isDns1123Subdomain(workload.serviceAccount)) {
    throw new Error(`service account "${workload.serviceAccount}" is not a valid DNS-1123 subdomain`);
  }
  return `spiffe://${trustDomain}/ns/${workload.namespace}/sa/${workload.serviceAccount}`;
}

export interface ParsedSpiffeId extends WorkloadName {
  trustDomain: string;
}

const WORKLOAD_ID = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** The parts of a workload SPIFFE ID in Strait's form, or undefined for anything else. */
export function parseSpiffeId(id: string): ParsedSpiffeId | undefined {
  const m = WORKLOAD_ID.exec(id);
  if (!m || trustDomainProblem(m[1]!) || !isDns1123Label(m[2]!) || !isDns1123Subdomain(m[3]!)) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
}

/** The service account the control plane's own certificate names; only the control plane holds it. */
export const CONTROL_PLANE_WORKLOAD: WorkloadName = { namespace: 'strait-system', serviceAccount: 'control-plane' };

/** spiffe://<trust-domain>/ns/strait-system/sa/control-plane: what workloads expect of their CA's server. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return spiffeId(trustDomain, CONTROL_PLANE_WORKLOAD);
}
