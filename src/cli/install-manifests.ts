// What `strait install` puts into a cluster, as objects in wire format (applied server-side, or
// printed as YAML): the namespace, the CRDs, least-privilege RBAC, the PKI Secret and ConfigMap, the
// control plane and gateway with their Services, and the injector's MutatingWebhookConfiguration.
import { CUSTOM_KINDS, customResourceDefinitions, KIND_ROUTES } from '../api/crds.js';
import { VERSION } from '../api/version.js';
import { DEFAULT_GATEWAY_PORT } from '../gateway/router.js';
import { ADMIN_PORT } from '../control/admin.js';
import { TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY, TRUST_ANCHORS_MOUNT } from '../control/injector.js';
import type { KubeObject } from '../control/kube-api.js';
import * as L from '../control/kube-layout.js';
import { MESH_API_PORT } from '../control/mesh-api/server.js';
import { WEBHOOK_PATH, WEBHOOK_PORT } from '../control/webhook.js';
import { CONTROL_PLANE_PORT } from '../runtime/addresses.js';
import type { IssuerPem, ServingPem } from './install-pki.js';

export const CONTROL_PLANE_IMAGE = `strait/control-plane:${VERSION}`;

export type GatewayServiceType = 'LoadBalancer' | 'NodePort';

export interface InstallPlan {
  clusterName: string;
  trustDomain: string;
  gatewayServiceType: GatewayServiceType;
  issuer: IssuerPem;
  webhookTls: ServingPem;
}

const labels = (component?: string) => ({ [L.PART_OF_LABEL]: L.PART_OF, ...(component ? { [L.COMPONENT_LABEL]: component } : {}) });
const meta = (name: string, namespace: string | undefined, component?: string) => ({ name, ...(namespace ? { namespace } : {}), labels: labels(component) });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const relative = (mount: string, file: string) => `${mount.replace(/^\/+/, '')}/${file}`;

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'update', 'patch', 'delete'];
/** What the control plane writes besides reading: mirrors of remote services (Services, EndpointSlices, ServiceImports). */
const WRITTEN_KINDS = new Set(['Service', 'EndpointSlice', 'ServiceImport']);

/**
 * The control plane's permissions, and no more: read every kind the store serves; write the mirror
 * kinds and the status of Strait's own kinds; the trust-anchor ConfigMap it copies into injected
 * namespaces; TokenReviews to check pods' tokens.
 */
export function controlPlaneRules(): PolicyRule[] {
  const byGroup = new Map<string, { read: string[]; write: string[] }>();
  for (const route of KIND_ROUTES.values()) {
    const g = byGroup.get(route.group) ?? { read: [], write: [] };
    g.read.push(route.plural);
    if (WRITTEN_KINDS.has(route.kind)) g.write.push(route.plural);
    byGroup.set(route.group, g);
  }
  const rules: PolicyRule[] = [];
  for (const [group, g] of byGroup) {
    rules.push({ apiGroups: [group], resources: g.read.sort(), verbs: READ });
    if (g.write.length) rules.push({ apiGroups: [group], resources: g.write.sort(), verbs: WRITE });
  }
  const statusByGroup = new Map<string, string[]>();
  for (const def of CUSTOM_KINDS) statusByGroup.set(def.group, [...(statusByGroup.get(def.group) ?? []), `${def.plural}/status`]);
  for (const [group, resources] of statusByGroup) rules.push({ apiGroups: [group], resources: resources.sort(), verbs: ['get', 'update', 'patch'] });
  rules.push({ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch'] });
  rules.push({ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] });
  return rules;
}

const downwardEnv = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
];

function deployment(name: string, component: string, account: string, container: Record<string, unknown>, volumes: unknown[]): KubeObject {
  const selector = { [L.PART_OF_LABEL]: L.PART_OF, [L.COMPONENT_LABEL]: component };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(name, L.STRAIT_NAMESPACE, component),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: selector, annotations: { 'strait.dev/inject': 'disabled' } },
        spec: { serviceAccountName: account, containers: [{ name: component, imagePullPolicy: 'IfNotPresent', ...container }], volumes },
      },
    },
  };
}

/** Every object of an install, in the order they are applied (what others depend on first, the webhook last). */
export function installManifests(plan: InstallPlan): KubeObject[] {
  const ns = L.STRAIT_NAMESPACE;
  const crds = customResourceDefinitions() as unknown as KubeObject[];
  const serviceAccounts = [L.CONTROL_PLANE_ACCOUNT, L.GATEWAY_ACCOUNT].map((name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name, ns) }));
  const rbac: KubeObject[] = [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(L.CONTROL_PLANE, undefined, 'control-plane'), rules: controlPlaneRules() },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta(L.CONTROL_PLANE, undefined, 'control-plane'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: L.CONTROL_PLANE },
      subjects: [{ kind: 'ServiceAccount', name: L.CONTROL_PLANE_ACCOUNT, namespace: ns }],
    },
    // Its own Secrets (the key link credentials are signed with, the credentials of links) only in strait-system.
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(L.CONTROL_PLANE, ns, 'control-plane'), rules: [{ apiGroups: [''], resources: ['secrets'], verbs: WRITE }] },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(L.CONTROL_PLANE, ns, 'control-plane'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: L.CONTROL_PLANE },
      subjects: [{ kind: 'ServiceAccount', name: L.CONTROL_PLANE_ACCOUNT, namespace: ns }],
    },
  ];
  const pki: KubeObject[] = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(TRUST_ANCHORS_CONFIGMAP, ns), data: { [TRUST_ANCHORS_KEY]: plan.issuer.trustAnchors } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta(L.ISSUER_SECRET, ns), type: 'kubernetes.io/tls', data: { 'tls.crt': b64(plan.issuer.issuerCert), 'tls.key': b64(plan.issuer.issuerKey) } },
    { apiVersion: 'v1', kind: 'Secret', metadata: meta(L.WEBHOOK_TLS_SECRET, ns), type: 'kubernetes.io/tls', data: { 'tls.crt': b64(plan.webhookTls.cert), 'tls.key': b64(plan.webhookTls.key) } },
  ];
  const services: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(L.CONTROL_PLANE, ns, 'control-plane'),
      spec: {
        selector: { [L.PART_OF_LABEL]: L.PART_OF, [L.COMPONENT_LABEL]: 'control-plane' },
        ports: [
          { name: L.IDENTITY_PORT_NAME, port: CONTROL_PLANE_PORT, targetPort: CONTROL_PLANE_PORT, protocol: 'TCP' },
          { name: 'mesh-api', port: MESH_API_PORT, targetPort: MESH_API_PORT, protocol: 'TCP' },
          { name: 'https-webhook', port: L.WEBHOOK_SERVICE_PORT, targetPort: WEBHOOK_PORT, protocol: 'TCP' },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(L.GATEWAY, ns, 'gateway'),
      spec: {
        type: plan.gatewayServiceType,
        // The gateway runs in the control plane's process, as in the local runtime.
        selector: { [L.PART_OF_LABEL]: L.PART_OF, [L.COMPONENT_LABEL]: 'control-plane' },
        ports: [{ name: 'tls-mesh', port: DEFAULT_GATEWAY_PORT, targetPort: DEFAULT_GATEWAY_PORT, protocol: 'TCP' }],
      },
    },
  ];
  const controlPlane = deployment(
    L.CONTROL_PLANE,
    'control-plane',
    L.CONTROL_PLANE_ACCOUNT,
    {
      image: CONTROL_PLANE_IMAGE,
      args: [
        '--platform', 'kubernetes',
        '--cluster-name', plan.clusterName,
        '--trust-domain', plan.trustDomain,
        '--trust-anchor', relative(TRUST_ANCHORS_MOUNT, TRUST_ANCHORS_KEY),
        '--issuer-cert', relative(L.ISSUER_MOUNT, 'tls.crt'),
        '--issuer-key', relative(L.ISSUER_MOUNT, 'tls.key'),
        '--webhook-port', String(WEBHOOK_PORT),
        '--webhook-cert', relative(L.WEBHOOK_TLS_MOUNT, 'tls.crt'),
        '--webhook-key', relative(L.WEBHOOK_TLS_MOUNT, 'tls.key'),
        // Every port on the pod's own address; the gateway runs in the control plane's process.
        '--listen', '$(POD_IP)',
        '--gateway-listen', `$(POD_IP):${DEFAULT_GATEWAY_PORT}`,
        '--gateway-address', `$(POD_IP):${DEFAULT_GATEWAY_PORT}`,
      ],
      env: downwardEnv,
      ports: [
        { name: L.IDENTITY_PORT_NAME, containerPort: CONTROL_PLANE_PORT },
        { name: 'mesh-api', containerPort: MESH_API_PORT },
        { name: 'https-webhook', containerPort: WEBHOOK_PORT },
        { name: 'admin-http', containerPort: ADMIN_PORT },
      ],
      readinessProbe: { httpGet: { path: '/ready', port: WEBHOOK_PORT, scheme: 'HTTPS' } },
      volumeMounts: [
        { name: 'issuer', mountPath: L.ISSUER_MOUNT, readOnly: true },
        { name: 'webhook-tls', mountPath: L.WEBHOOK_TLS_MOUNT, readOnly: true },
        { name: 'trust-anchors', mountPath: TRUST_ANCHORS_MOUNT, readOnly: true },
      ],
    },
    [
      { name: 'issuer', secret: { secretName: L.ISSUER_SECRET } },
      { name: 'webhook-tls', secret: { secretName: L.WEBHOOK_TLS_SECRET } },
      { name: 'trust-anchors', configMap: { name: TRUST_ANCHORS_CONFIGMAP } },
    ],
  );
  const webhook: KubeObject = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: meta(L.WEBHOOK_CONFIG, undefined, 'proxy-injector'),
    webhooks: [
      {
        name: L.WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        clientConfig: { service: { name: L.CONTROL_PLANE, namespace: ns, path: WEBHOOK_PATH, port: L.WEBHOOK_SERVICE_PORT }, caBundle: b64(plan.webhookTls.cert) },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        failurePolicy: L.WEBHOOK_FAILURE_POLICY,
        // It writes the trust-anchor ConfigMap into the pod's namespace, except on a dry run.
        sideEffects: 'NoneOnDryRun',
        timeoutSeconds: 10,
        reinvocationPolicy: 'Never',
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [ns, 'kube-system'] }] },
        objectSelector: { matchExpressions: [{ key: L.PART_OF_LABEL, operator: 'NotIn', values: [L.PART_OF] }] },
      },
    ],
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: labels(), annotations: { 'strait.dev/inject': 'disabled' } } },
    ...crds,
    ...serviceAccounts,
    ...rbac,
    ...pki,
    ...services,
    controlPlane,
    webhook,
  ];
}

/** The objects of an install with empty PKI: enough to know the kinds and where they go (permissions, CRDs). */
export function installShape(): KubeObject[] {
  return installManifests({ clusterName: 'shape', trustDomain: 'cluster.local', gatewayServiceType: 'LoadBalancer', issuer: { trustAnchors: '', issuerCert: '', issuerKey: '' }, webhookTls: { cert: '', key: '' } });
}
