// The injector webhook as the control plane runs it on Kubernetes: it reads namespaces and the
// control plane's Service address from the API server, and copies the trust anchors into a
// ConfigMap of each namespace whose pods it injects (as istiod does with istio-ca-root-cert).
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import type { Resource } from '../api/types.js';
import { IDENTITY_AUDIENCE } from '../identity/credentials.js';
import { TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY } from './injector.js';
import { kindPath, resourcePath, type KubeApi } from './kube-api.js';
import * as L from './kube-layout.js';
import { startInjectorWebhook, type InjectorOptions } from './webhook.js';

/** Where proxies reach the control plane: its Service's ClusterIP (there is no cluster DNS to name it by). */
export async function controlPlaneAddress(api: KubeApi): Promise<string> {
  const service = await api.get<{ spec?: { clusterIP?: string; ports?: { name?: string; port: number }[] } }>(resourcePath(kindPath('Service'), L.CONTROL_PLANE, L.STRAIT_NAMESPACE));
  const ip = service?.spec?.clusterIP;
  const port = service?.spec?.ports?.find((p) => p.name === L.IDENTITY_PORT_NAME)?.port;
  if (!ip || ip === 'None' || port === undefined) {
    throw new Error(`service ${L.STRAIT_NAMESPACE}/${L.CONTROL_PLANE} has no ClusterIP or no port ${L.IDENTITY_PORT_NAME}; install Strait again: strait install`);
  }
  return `${ip}:${port}`;
}

export async function kubeInjectorOptions(api: KubeApi, options: { cluster: string; trustDomain: string; trustAnchorsPem: string; onEvent?: InjectorOptions['onEvent'] }): Promise<InjectorOptions> {
  const written = new Set<string>();
  return {
    settings: { cluster: options.cluster, trustDomain: options.trustDomain, controlPlane: await controlPlaneAddress(api), audience: IDENTITY_AUDIENCE },
    namespace: (name) => api.get<Resource>(resourcePath(kindPath('Namespace'), name)),
    ensureTrustAnchors: async (namespace) => {
      if (written.has(namespace)) return;
      await api.apply(kindPath('ConfigMap'), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: TRUST_ANCHORS_CONFIGMAP, namespace, labels: { [L.PART_OF_LABEL]: L.PART_OF } },
        data: { [TRUST_ANCHORS_KEY]: options.trustAnchorsPem },
      });
      written.add(namespace);
    },
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  };
}

/** Starts the webhook with the serving certificate and trust anchors the install mounted. */
export async function startKubeInjector(
  api: KubeApi,
  options: { cluster: string; trustDomain: string; trustAnchorsFile: string; certFile: string; keyFile: string; port?: number; host?: string; onEvent?: InjectorOptions['onEvent'] },
): Promise<https.Server> {
  const injector = await kubeInjectorOptions(api, { ...options, trustAnchorsPem: readFileSync(options.trustAnchorsFile, 'utf8') });
  return startInjectorWebhook({ ...injector, cert: readFileSync(options.certFile, 'utf8'), key: readFileSync(options.keyFile, 'utf8'), ...(options.port ? { port: options.port } : {}), ...(options.host ? { host: options.host } : {}) });
}
