// Where Strait lives in a Kubernetes cluster: the names `strait install` gives its objects and the
// paths its pods mount them at, shared by the installer, `strait check` and the control plane.
import { CONTROL_PLANE_WORKLOAD } from '../identity/spiffe.js';

export const STRAIT_NAMESPACE = CONTROL_PLANE_WORKLOAD.namespace;
/** On everything install creates (and the trust-anchor ConfigMaps the webhook copies), so uninstall finds exactly that. */
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const PART_OF = 'strait';
export const PART_OF_SELECTOR = `${PART_OF_LABEL}=${PART_OF}`;
export const COMPONENT_LABEL = 'app.kubernetes.io/component';

export const CONTROL_PLANE = 'strait-control-plane';
export const CONTROL_PLANE_ACCOUNT = CONTROL_PLANE_WORKLOAD.serviceAccount;
export const GATEWAY = 'strait-gateway';
export const GATEWAY_ACCOUNT = 'gateway';
export const ISSUER_SECRET = 'strait-issuer';
export const WEBHOOK_TLS_SECRET = 'strait-injector-tls';
export const WEBHOOK_CONFIG = 'strait-proxy-injector';
export const WEBHOOK_NAME = 'inject.strait.dev';
/** The webhook's failure policy: a pod created while the injector is down starts without a proxy rather than not at all (as Linkerd's). */
export const WEBHOOK_FAILURE_POLICY = 'Ignore';
/** The Service port the API server calls the webhook on (the control plane serves it on WEBHOOK_PORT). */
export const WEBHOOK_SERVICE_PORT = 443;
/** The control-plane Service's port for identity and discovery, which the webhook gives proxies. */
export const IDENTITY_PORT_NAME = 'grpc-identity';

/** Mount paths in the control-plane pod; the node agent makes them relative to the pod's directory. */
export const ISSUER_MOUNT = '/var/run/secrets/strait/issuer';
export const WEBHOOK_TLS_MOUNT = '/var/run/secrets/strait/injector';
