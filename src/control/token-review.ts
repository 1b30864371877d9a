// Workload credentials on Kubernetes: the pod's projected ServiceAccount token, checked by the API
// server through the TokenReview API for Strait's audience, as Linkerd's identity service does. The
// identity is the token's namespace and service account; a token bound to a pod names it. The local
// runtime keeps its bootstrap tokens (src/identity/credentials.ts); both are CredentialVerifiers.
import { CredentialRejected, IDENTITY_AUDIENCE, type CredentialVerifier, type VerifiedCredential } from '../identity/credentials.js';
import { kindPath, resourcePath, type KubeApi } from './kube-api.js';

/** What the TokenReview API answers (authentication.k8s.io/v1 TokenReviewStatus). */
export interface TokenReviewStatus {
  authenticated?: boolean;
  audiences?: string[];
  error?: string;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
}

/** Sends one token for review with the audiences it must be valid for. */
export type TokenReviewer = (token: string, audiences: string[]) => Promise<TokenReviewStatus>;

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;
const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

/** What the verifier reads of the pod a token is bound to. */
export interface BoundPod {
  uid?: string;
  podIP?: string;
}

/** A reviewer that posts TokenReviews to the API server (needs `create` on `tokenreviews`). */
export function apiTokenReviewer(api: KubeApi): TokenReviewer {
  return async (token, audiences) => {
    const review = await api.create<{ status?: TokenReviewStatus }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences },
    });
    return review.status ?? {};
  };
}

/** Looks up a token's pod through the API server (needs `get` on `pods`). */
export function apiBoundPod(api: KubeApi): (namespace: string, name: string) => Promise<BoundPod | undefined> {
  return async (namespace, name) => {
    const pod = await api.get<{ metadata: { uid?: string }; status?: { podIP?: string } }>(resourcePath(kindPath('Pod'), name, namespace));
    return pod && { uid: pod.metadata.uid, podIP: pod.status?.podIP };
  };
}

export class TokenReviewVerifier implements CredentialVerifier {
  private readonly review: TokenReviewer;
  private readonly audience: string;
  private readonly cluster: string | undefined;

  private readonly pod: ((namespace: string, name: string) => Promise<BoundPod | undefined>) | undefined;

  /** `pod` looks up the pod a token is bound to, so a token is only good from that pod's address. */
  constructor(options: { review: TokenReviewer; audience?: string; cluster?: string; pod?: (namespace: string, name: string) => Promise<BoundPod | undefined> }) {
    this.review = options.review;
    this.audience = options.audience ?? IDENTITY_AUDIENCE;
    this.cluster = options.cluster;
    this.pod = options.pod;
  }

  /** `peer` is the caller's IP address, when the server knows it. */
  async verify(token: string, peer?: string): Promise<VerifiedCredential> {
    if (token.trim() === '') throw new CredentialRejected('malformed', 'the token is empty');
    const status = await this.review(token, [this.audience]);
    if (!status.authenticated) {
      // The API server says "token audiences … is invalid for the target audiences" for a token of another audience.
      const reason = status.error !== undefined && /audience/i.test(status.error) ? 'wrong-audience' : 'bad-signature';
      throw new CredentialRejected(reason, `the Kubernetes API server did not accept the token${status.error ? `: ${status.error}` : ''}`);
    }
    // An API server that ignores audiences would accept any token of the cluster: insist on ours.
    if (status.audiences !== undefined && !status.audiences.includes(this.audience)) {
      throw new CredentialRejected('wrong-audience', `the token is for ${JSON.stringify(status.audiences)}, not for ${this.audience}`);
    }
    const user = status.user?.username ?? '';
    const m = SERVICE_ACCOUNT_USER.exec(user);
    if (!m) throw new CredentialRejected('invalid-claims', `the token authenticates ${JSON.stringify(user)}, which is not a service account`);
    const [namespace, serviceAccount] = [m[1]!, m[2]!];
    const pod = status.user?.extra?.[POD_NAME]?.[0];
    // A token not bound to a pod (a Secret's, or requested for the account alone) proves no workload.
    if (pod === undefined) throw new CredentialRejected('invalid-claims', `the token of ${user} is not bound to a pod; mount a projected service account token with audience ${this.audience}`);
    if (this.pod) await this.checkBoundPod(namespace, pod, status.user?.extra?.[POD_UID]?.[0], peer);
    return {
      namespace,
      serviceAccount,
      ...(this.cluster === undefined ? {} : { cluster: this.cluster }),
      pod,
    };
  }

  private async checkBoundPod(namespace: string, name: string, uid: string | undefined, peer: string | undefined): Promise<void> {
    const bound = await this.pod!(namespace, name);
    if (!bound || (uid !== undefined && bound.uid !== undefined && bound.uid !== uid)) {
      throw new CredentialRejected('invalid-claims', `the token is bound to pod ${namespace}/${name}, which no longer exists`);
    }
    const address = peer?.replace(/^::ffff:/, '');
    if (address !== undefined && bound.podIP !== undefined && bound.podIP !== address) {
      throw new CredentialRejected('invalid-claims', `the token is bound to pod ${namespace}/${name} (${bound.podIP}) but was presented from ${address}: a pod may only use its own token`);
    }
  }
}

/** The verifier the control plane uses on Kubernetes: TokenReview, and the bound pod looked up, through `api`. */
export function kubeCredentialVerifier(api: KubeApi, cluster: string): TokenReviewVerifier {
  return new TokenReviewVerifier({ review: apiTokenReviewer(api), pod: apiBoundPod(api), cluster });
}
