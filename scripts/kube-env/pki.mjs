// The certificates and keys of one test cluster, made with openssl: a cluster CA, the API server's
// serving certificate, a client certificate per component (and the admin's, in system:masters), and
// the ServiceAccount token signing key. Kubeconfigs embed what they need.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A key and a certificate signed by the cluster CA; `sans` make it a serving certificate. */
function leaf(dir, name, subject, { sans, client = true } = {}) {
  if (existsSync(join(dir, `${name}.crt`))) return;
  openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${[client && 'clientAuth', sans && 'serverAuth'].filter(Boolean).join(',')}`,
    ...(sans ? [`subjectAltName=${sans.join(',')}`] : []),
  ];
  writeFileSync(join(dir, `${name}.ext`), ext.join('\n') + '\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '3650', '-out', `${name}.crt`, '-extfile', `${name}.ext`], dir);
}

/** Makes (or keeps) the cluster's PKI in `dir`; returns the paths the components take. */
export function clusterPki(dir, { cluster, apiAddress, serviceAddress, nodeName }) {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'ca.crt'))) {
    openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', `/CN=${cluster}-ca`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'], dir);
  }
  const dns = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'];
  leaf(dir, 'apiserver', `/CN=kube-apiserver`, { sans: [...dns.map((d) => `DNS:${d}`), `IP:${apiAddress}`, `IP:${serviceAddress}`, 'IP:127.0.0.1'], client: false });
  leaf(dir, 'admin', '/O=system:masters/CN=kube-env-admin');
  leaf(dir, 'controller-manager', '/CN=system:kube-controller-manager');
  leaf(dir, 'scheduler', '/CN=system:kube-scheduler');
  leaf(dir, 'node', `/O=system:nodes/CN=system:node:${nodeName}`);
  if (!existsSync(join(dir, 'sa.key'))) {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], dir);
    openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  }
  return { dir, ca: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), saKey: join(dir, 'sa.key'), saPub: join(dir, 'sa.pub') };
}

const b64 = (file) => readFileSync(file).toString('base64');

/**
 * A kubeconfig with one context per entry, each named after its cluster; `user` names the client
 * certificate in that cluster's PKI directory.
 */
export function kubeconfig(entries) {
  const clusters = entries.map(
    (e) => `- name: ${e.name}\n  cluster:\n    server: https://${e.apiAddress}:${e.apiPort}\n    certificate-authority-data: ${b64(join(e.pki, 'ca.crt'))}`,
  );
  const users = entries.map(
    (e) =>
      `- name: ${e.name}-${e.user}\n  user:\n    client-certificate-data: ${b64(join(e.pki, `${e.user}.crt`))}\n    client-key-data: ${b64(join(e.pki, `${e.user}.key`))}`,
  );
  const contexts = entries.map((e) => `- name: ${e.name}\n  context:\n    cluster: ${e.name}\n    user: ${e.name}-${e.user}`);
  return [
    'apiVersion: v1',
    'kind: Config',
    'preferences: {}',
    `current-context: ${entries[0].name}`,
    'clusters:',
    ...clusters,
    'users:',
    ...users,
    'contexts:',
    ...contexts,
    '',
  ].join('\n');
}
