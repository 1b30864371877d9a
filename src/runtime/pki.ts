// The mesh PKI of a state directory. Without user material, `strait up` makes a trust anchor once
// (under <home>/pki) and an issuer per cluster; with it (step's or Istio's files), each cluster's
// issuer is checked and copied into <home>/clusters/<c>/identity before anything else is written.
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureMeshPki, ISTIO_CACERTS, loadIssuerFiles, loadIstioCacerts, PKI_FILES } from '../identity/files.js';
import { certificatesPem, PkiError } from '../identity/pem.js';
import type { Issuer } from '../identity/pki.js';
import { clusterDir, HomeError } from './home.js';

/** Where a cluster's control plane finds its issuer, and what its pods are given to trust. */
export const identityPaths = {
  meshPki: (home: string) => join(home, 'pki'),
  dir: (home: string, cluster: string) => join(clusterDir(home, cluster), 'identity'),
  trustAnchors: (home: string, cluster: string) => join(clusterDir(home, cluster), 'identity', 'trust-anchors.pem'),
  issuerCert: (home: string, cluster: string) => join(clusterDir(home, cluster), 'identity', 'issuer.crt'),
  issuerKey: (home: string, cluster: string) => join(clusterDir(home, cluster), 'identity', 'issuer.key'),
  tokenKey: (home: string, cluster: string) => join(clusterDir(home, cluster), 'identity', 'token.key'),
};

/** What the user gave `strait up`; per-cluster values are `cluster=path`, a bare path means every cluster. */
export interface BringYourOwnPki {
  trustAnchor?: string;
  issuerCert?: string[];
  issuerKey?: string[];
  cacerts?: string[];
}

function perCluster(values: string[] | undefined, clusters: string[], flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    const cluster = eq > 0 && !v.slice(0, eq).includes('/') ? v.slice(0, eq) : undefined;
    const path = cluster === undefined ? v : v.slice(eq + 1);
    if (cluster !== undefined && !clusters.includes(cluster)) {
      throw new HomeError(`${flag} ${v}: cluster "${cluster}" is not among --clusters (${clusters.join(', ')})`);
    }
    for (const c of cluster === undefined ? clusters : [cluster]) out.set(c, path);
  }
  return out;
}

/** A checked issuer of the user's, and the file its key came from. */
export interface UserIssuer {
  issuer: Issuer;
  keyFile: string;
}

/**
 * Checks the user's PKI material for `clusters` and returns each cluster's issuer, without writing
 * anything. Throws naming the file and the reason.
 */
export async function checkBringYourOwn(byo: BringYourOwnPki, clusters: string[]): Promise<Map<string, UserIssuer>> {
  const certs = perCluster(byo.issuerCert, clusters, '--issuer-cert');
  const keys = perCluster(byo.issuerKey, clusters, '--issuer-key');
  const cacerts = perCluster(byo.cacerts, clusters, '--cacerts');
  const issuers = new Map<string, UserIssuer>();
  for (const cluster of clusters) {
    const cert = certs.get(cluster);
    const key = keys.get(cluster);
    const istio = cacerts.get(cluster);
    if (istio !== undefined && (cert !== undefined || key !== undefined)) {
      throw new HomeError(`cluster ${cluster}: give either --cacerts or --issuer-cert/--issuer-key, not both`);
    }
    if (istio !== undefined) {
      issuers.set(cluster, { issuer: await loadIstioCacerts(istio), keyFile: join(istio, ISTIO_CACERTS.key) });
      continue;
    }
    if (cert === undefined && key === undefined) continue;
    if (cert === undefined || key === undefined) throw new HomeError(`cluster ${cluster}: --issuer-cert and --issuer-key go together; one of them is missing`);
    if (byo.trustAnchor === undefined) throw new HomeError(`cluster ${cluster}: --issuer-cert needs --trust-anchor, the root it chains to`);
    issuers.set(cluster, { issuer: await loadIssuerFiles({ trustAnchor: byo.trustAnchor, issuerCert: cert, issuerKey: key }), keyFile: key });
  }
  if (byo.trustAnchor !== undefined && issuers.size === 0) {
    throw new HomeError('--trust-anchor was given without an issuer: add --issuer-cert and --issuer-key (step\'s intermediate-ca output)');
  }
  return issuers;
}

/** Writes checked user material into each cluster's identity directory; keys 0600. */
export function installIssuers(home: string, issuers: Map<string, UserIssuer>): void {
  for (const [cluster, { issuer, keyFile }] of issuers) {
    mkdirSync(identityPaths.dir(home, cluster), { recursive: true, mode: 0o700 });
    // The issuer first, then any intermediates up to the anchor, as loadIssuerFiles reads them back.
    writeFileSync(identityPaths.issuerCert(home, cluster), certificatesPem([issuer.certificate, ...issuer.intermediates]));
    copyFileSync(keyFile, identityPaths.issuerKey(home, cluster));
    chmodSync(identityPaths.issuerKey(home, cluster), 0o600);
    writeFileSync(identityPaths.trustAnchors(home, cluster), certificatesPem(issuer.trustBundle));
  }
}

/** Makes the state directory's own PKI for the clusters that have no issuer of the user's. */
export async function ensureLocalPki(home: string, trustDomain: string, clusters: string[]): Promise<void> {
  const own = clusters.filter((c) => !existsSync(identityPaths.issuerCert(home, c)));
  if (own.length === 0) return;
  await ensureMeshPki(identityPaths.meshPki(home), { trustDomain, clusters: own });
  for (const c of own) {
    mkdirSync(identityPaths.dir(home, c), { recursive: true, mode: 0o700 });
    const pki = identityPaths.meshPki(home);
    copyFileSync(join(pki, PKI_FILES.issuerCert(c)), identityPaths.issuerCert(home, c));
    copyFileSync(join(pki, PKI_FILES.issuerKey(c)), identityPaths.issuerKey(home, c));
    copyFileSync(join(pki, PKI_FILES.anchorCert), identityPaths.trustAnchors(home, c));
  }
}

/** The issuer a cluster's control plane signs with. */
export async function loadClusterIssuer(home: string, cluster: string): Promise<Issuer> {
  try {
    return await loadIssuerFiles({
      trustAnchor: identityPaths.trustAnchors(home, cluster),
      issuerCert: identityPaths.issuerCert(home, cluster),
      issuerKey: identityPaths.issuerKey(home, cluster),
    });
  } catch (err) {
    if (err instanceof PkiError) throw new HomeError(`cluster ${cluster} has no usable issuer: ${err.message}; run strait up again to create one`);
    throw err;
  }
}
