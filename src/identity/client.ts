// The workload identity client, used by proxies, gateways and control planes alike: it makes a key
// pair in memory (never on disk), asks the CA to certify it, renews at about 70 % of the
// certificate's life, retries with back-off while the CA is away, and hands out TLS contexts so new
// connections use the newest certificate while open ones carry on.
import { createSecureContext, type SecureContext } from 'node:tls';
import { webcrypto } from 'node:crypto';
import { createClient, type Transport } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { Identity } from '../api/gen/strait/identity/v1/identity_pb.js';
import { certificatesPem } from './pem.js';
import { checkTrustAnchors, verifyChain, uriSans } from './pki.js';
import { parseSpiffeId } from './spiffe.js';
import { anchorOnlyClientOptions, secureContextOptions, type ExpectedPeer, type TlsIdentity, type TlsMaterial } from './tls.js';
import { ECDSA_P256, generateKeyPair, privateKeyPem, x509, type CryptoKeyPair } from './x509.js';

/** DER certificates as the CA returns them. */
export interface CertifiedChain {
  /** The workload's certificate first, then its issuer(s). */
  certChain: Uint8Array[];
  trustBundle: Uint8Array[];
}

/** Whatever gets a CSR signed: the CA service over the network, or a local CA in the control plane. */
export interface Certifier {
  certify(csrDer: Uint8Array): Promise<CertifiedChain>;
}

/** Where the platform credential comes from; called before every request so a refreshed token file is picked up. */
export type TokenSource = () => string | Promise<string>;

/** A Connect transport to a cluster's CA over HTTP/2 TLS that accepts only a server chaining to `trustBundlePem` and proving `serverIdentity`. */
export function caTransport(options: { baseUrl: string; trustBundlePem: string; serverIdentity: ExpectedPeer }): Transport {
  return createConnectTransport({
    baseUrl: options.baseUrl,
    httpVersion: '2',
    nodeOptions: anchorOnlyClientOptions(options.trustBundlePem, options.serverIdentity),
  });
}

/** A Certifier calling Identity.Certify through `transport`. */
export function connectCertifier(transport: Transport, token: TokenSource, options: { timeoutMs?: number } = {}): Certifier {
  const client = createClient(Identity, transport);
  return {
    async certify(csr) {
      const res = await client.certify({ token: await token(), csr }, { timeoutMs: options.timeoutMs ?? 10_000 });
      return { certChain: res.certChain, trustBundle: res.trustBundle };
    },
  };
}

/** The mesh's trust anchors, as PEM, from Identity.TrustBundle. */
export async function fetchTrustBundle(transport: Transport, token: TokenSource): Promise<string> {
  const res = await createClient(Identity, transport).trustBundle({ token: await token() });
  return certificatesPem(res.trustBundle.map((der) => new x509.X509Certificate(der)));
}

/** `pending` until the first answer; `expiring` once renewal is due (or failing) while the certificate is still valid. */
export type IdentityStatus = 'pending' | 'ready' | 'expiring' | `failed: ${string}`;

export interface WorkloadIdentityOptions {
  certifier: Certifier;
  /** When set, a certificate for any other SPIFFE ID is refused. */
  expectedSpiffeId?: string;
  /** Renew after this fraction of the remaining lifetime; 0.7 by default. */
  renewFraction?: number;
  /** Retry delays while the CA fails: doubling from `initialMs` up to `maxMs`, with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
}

interface Current extends TlsMaterial {
  notAfter: Date;
  renewAt: number;
  context: SecureContext;
}

// setTimeout cannot wait longer than this.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WorkloadIdentity implements TlsIdentity {
  private readonly options: WorkloadIdentityOptions;
  private current: Current | undefined;
  private lastError: string | undefined;
  private readonly listeners = new Set<() => void>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly firstCertificate: Promise<void>;
  private settleFirst!: { resolve: () => void; reject: (err: Error) => void };

  constructor(options: WorkloadIdentityOptions) {
    this.options = options;
    this.firstCertificate = new Promise((resolve, reject) => (this.settleFirst = { resolve, reject }));
    this.firstCertificate.catch(() => {}); // observed through start() only
  }

  /** Starts the certify/renew loop; resolves with the first certificate, rejects if stopped first. */
  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      void this.loop();
    }
    return this.firstCertificate;
  }

  /** Stops renewing. The current certificate stays usable until it expires. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.wake?.();
    this.settleFirst.reject(new Error('the workload identity was stopped before it got a certificate'));
  }

  status(): IdentityStatus {
    const now = Date.now();
    const c = this.current;
    if (c && now < c.notAfter.getTime()) return now < c.renewAt ? 'ready' : 'expiring';
    if (c) return `failed: the certificate expired at ${c.notAfter.toISOString()}${this.lastError ? `; last renewal error: ${this.lastError}` : ''}`;
    return this.lastError === undefined ? 'pending' : `failed: ${this.lastError}`;
  }

  /** The last renewal error, also while the current certificate is still good. */
  get error(): string | undefined {
    return this.lastError;
  }

  get notAfter(): Date | undefined {
    return this.current?.notAfter;
  }

  material(): TlsMaterial {
    const { spiffeId, keyPem, certChainPem, trustBundlePem } = this.requireCurrent();
    return { spiffeId, keyPem, certChainPem, trustBundlePem };
  }

  secureContext(): SecureContext {
    return this.requireCurrent().context;
  }

  onRotate(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private requireCurrent(): Current {
    if (!this.current) throw new Error(`no workload certificate yet (status: ${this.status()})`);
    return this.current;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let delay: number;
      try {
        await this.renew();
        if (!this.running) break;
        failures = 0;
        delay = this.current!.renewAt - Date.now();
      } catch (err) {
        this.lastError = (err as Error).message;
        failures++;
        const { initialMs = 250, maxMs = 10_000 } = this.options.backoff ?? {};
        const ceiling = Math.min(maxMs, initialMs * 2 ** (failures - 1));
        delay = ceiling / 2 + (Math.random() * ceiling) / 2; // jitter, so restarted workloads do not retry in step
      }
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
    });
  }

  private async renew(): Promise<void> {
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: ECDSA_P256 });
    const answer = await this.options.certifier.certify(new Uint8Array(csr.rawData));
    if (!this.running) return;
    const next = await this.accept(answer, keys);
    this.current = next;
    this.lastError = undefined;
    this.settleFirst.resolve();
    for (const listener of this.listeners) listener();
  }

  /** Checks the CA's answer before using it: our key, one SPIFFE ID, a chain to the bundle it sent. */
  private async accept(answer: CertifiedChain, keys: CryptoKeyPair): Promise<Current> {
    const parse = (der: Uint8Array, what: string) => {
      try {
        return new x509.X509Certificate(der);
      } catch (err) {
        throw new Error(`the CA sent a ${what} that cannot be parsed: ${(err as Error).message}`);
      }
    };
    const chain = answer.certChain.map((der, i) => ({ cert: parse(der, 'certificate'), source: `certificate #${i + 1} from the CA` }));
    // An expired anchor can vouch for nothing; one left in a rotated bundle must not stop renewals.
    const anchors = answer.trustBundle
      .map((der, i) => ({ cert: parse(der, 'trust anchor'), source: `trust anchor #${i + 1} from the CA` }))
      .filter((a) => a.cert.notAfter.getTime() > Date.now());
    const leaf = chain[0]?.cert;
    if (!leaf) throw new Error('the CA sent no certificate');
    const ourKey = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
    if (!Buffer.from(leaf.publicKey.rawData).equals(ourKey)) throw new Error('the CA sent a certificate for another key');
    const ids = uriSans(leaf);
    const spiffeId = ids[0];
    if (ids.length !== 1 || spiffeId === undefined || !parseSpiffeId(spiffeId)) {
      throw new Error(`the CA sent a certificate whose URI SANs (${ids.join(', ') || 'none'}) are not one SPIFFE ID`);
    }
    if (this.options.expectedSpiffeId !== undefined && spiffeId !== this.options.expectedSpiffeId) {
      throw new Error(`the CA sent a certificate for ${spiffeId}, expected ${this.options.expectedSpiffeId}`);
    }
    await checkTrustAnchors(anchors);
    await verifyChain(chain, anchors, { endEntity: true });
    const material: TlsMaterial = {
      spiffeId,
      keyPem: await privateKeyPem(keys.privateKey),
      certChainPem: certificatesPem(chain.map((c) => c.cert)),
      trustBundlePem: certificatesPem(anchors.map((a) => a.cert)),
    };
    const now = Date.now();
    const notAfter = leaf.notAfter;
    const renewAt = now + (this.options.renewFraction ?? 0.7) * (notAfter.getTime() - now);
    return { ...material, notAfter, renewAt, context: createSecureContext(secureContextOptions(material)) };
  }
}
