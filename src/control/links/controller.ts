// One link's controller, in the consuming cluster's control plane: watches the target cluster's
// mesh API through its gateway and writes what it exports — mirrors, and the member slices of
// global and clusterset services (see mirrors.ts, writer.ts) — probes the
// target's gateway (probe.ts), and reports both in the Link's status. A lost connection keeps the
// mirrors and resumes the watch where it left off; a dead gateway keeps them too, with every
// endpoint not ready, until a probe succeeds again.
import { Code, ConnectError } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { ExportedService, InfoResponse, WatchExportsResponse } from '../../api/gen/strait/mesh/v1/mesh_pb.js';
import { secretValue, type Secret } from '../../api/kinds/secret.js';
import { parseHostPort, probeTiming, type Link, type LinkCondition, type LinkStatus } from '../../api/kinds/strait.js';
import { matchesSelector } from '../../api/labels.js';
import type { TlsIdentity } from '../../identity/tls.js';
import { NotFoundError, type Store } from '../../store/store.js';
import { connectMeshApi } from '../mesh-api/client.js';
import { trustAnchorFingerprints } from '../mesh-api/server.js';
import { exportProblem, memberSlices, mirrorObjects, mirrorProblem, type MirrorOptions } from './mirrors.js';
import { GatewayHealth, probeGateway } from './probe.js';
import { MirrorWriter } from './writer.js';

const RECONNECT_MS = { initial: 200, max: 5_000 };
const INFO_TIMEOUT_MS = 5_000;
/** Status writes are coalesced over this long. */
const STATUS_DELAY_MS = 50;

export interface LinkControllerOptions {
  store: Store;
  link: Link;
  /** This cluster's name. */
  cluster: string;
  trustDomain: string;
  /** This control plane's certificate: the client certificate for the target's mesh API and gateway. */
  identity: TlsIdentity;
  /** The mesh's namespace sameness, for a Link that does not set its own (spec.sameness). */
  sameness: boolean;
  log: Logger;
}

/** A reason the link cannot work that retrying will not fix by itself; reported in the Synced condition. */
class LinkProblem extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class LinkController {
  private readonly link: Link;
  private readonly target: string;
  private readonly log: Logger;
  private readonly writer: MirrorWriter;
  private readonly health: GatewayHealth;
  private readonly timing: ReturnType<typeof probeTiming>;
  private readonly gateway: { host: string; port: number } | undefined;
  /** What the target exports, as last heard, by `namespace/name`. */
  private readonly remote = new Map<string, ExportedService>();
  private readonly stopping = new AbortController();
  private readonly conditions = new Map<LinkCondition['type'], LinkCondition>();
  private info: InfoResponse | undefined;
  private lastSync: Date | undefined;
  private ignored = new Set<string>();
  private loops: Promise<void>[] = [];
  private wakeProbe: (() => void) | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private writtenStatus = '';

  constructor(private readonly options: LinkControllerOptions) {
    this.link = options.link;
    this.target = options.link.spec!.targetClusterName;
    this.log = options.log.child({ link: this.target });
    this.writer = new MirrorWriter({ store: options.store, cluster: this.target, log: this.log });
    this.timing = probeTiming(options.link.spec!.probeSpec);
    this.health = new GatewayHealth(this.timing.failureThreshold);
    this.gateway = parseHostPort(options.link.spec!.gatewayAddress);
    this.setCondition('Synced', 'Unknown', 'Connecting', `connecting to the mesh API of ${this.target} at ${options.link.spec!.gatewayAddress}`);
    this.setCondition('GatewayAlive', 'Unknown', 'Probing', `probing the gateway of ${this.target} at ${options.link.spec!.gatewayAddress}`);
  }

  get name(): string {
    return this.target;
  }

  async start(): Promise<void> {
    await this.writer.start();
    if (!this.gateway) {
      this.setCondition('Synced', 'False', 'InvalidSpec', `spec.gatewayAddress ${JSON.stringify(this.link.spec!.gatewayAddress)} is not host:port`);
      return;
    }
    this.loops = [this.watchLoop(this.gateway), this.probeLoop(this.gateway)];
  }

  /** Stops watching and probing; the mirrors stay as they are. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeProbe?.();
    await Promise.all(this.loops);
    await this.writer.stop();
    clearTimeout(this.statusTimer);
  }

  /** Resolves once the mirrors reflect everything heard so far. */
  settled(): Promise<void> {
    return this.writer.settled();
  }

  status(): LinkStatus {
    const synced = this.conditions.get('Synced')!;
    const ignored = this.ignored.size;
    const count = this.writer.remoteServices;
    const mirroring = `mirroring ${count} service${count === 1 ? '' : 's'} of ${this.target}${ignored > 0 ? ` (${ignored} ignored: see the control plane log)` : ''}`;
    const message = synced.status === 'True' ? mirroring : synced.message;
    return {
      conditions: [{ ...synced, message }, this.conditions.get('GatewayAlive')!],
      ...(this.info ? { clusterId: this.info.clusterId, remoteVersion: this.info.version } : {}),
      ...(this.lastSync ? { lastSync: this.lastSync.toISOString() } : {}),
      services: this.writer.remoteServices,
      gateway: this.health.status(),
    };
  }

  // ---- the export watch ----

  private async watchLoop(gateway: { host: string; port: number }): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      let connection: ReturnType<typeof connectMeshApi> | undefined;
      let streaming = false;
      try {
        const token = await this.readToken();
        connection = connectMeshApi({ address: gateway, cluster: this.target, trustDomain: this.options.trustDomain, identity: this.options.identity, token });
        this.checkInfo(await connection.client.info({}, { signal, timeoutMs: INFO_TIMEOUT_MS }));
        const known = [...this.remote.values()].map((s) => ({ namespace: s.namespace, name: s.name, revision: s.revision }));
        const sameness = this.link.spec!.sameness ?? this.options.sameness;
        for await (const update of connection.client.watchExports({ known, sameness }, { signal })) {
          // Through the gateway again: a gateway known down is probed now rather than at the next period.
          if (!streaming && this.health.alive === false) this.wakeProbe?.();
          streaming = true;
          failures = 0;
          this.apply(update);
        }
        if (!signal.aborted) throw new ConnectError('the mesh API ended the stream', Code.Unavailable);
      } catch (err) {
        if (signal.aborted) break;
        const { reason, message } = describeFailure(err, this.target, this.link.spec!.gatewayAddress);
        if (this.conditions.get('Synced')?.message !== message) this.log.warn({ reason, err: message }, 'link: the export watch failed');
        this.setCondition('Synced', 'False', reason, message);
        // A broken stream is the first sign of a dead gateway: probe at once rather than at the next period.
        if (streaming) this.wakeProbe?.();
        failures++;
      } finally {
        connection?.close();
      }
      const delay = Math.min(RECONNECT_MS.max, RECONNECT_MS.initial * 2 ** Math.max(0, failures - 1));
      await sleep(delay * (0.5 + Math.random() / 2), signal);
    }
  }

  private async readToken(): Promise<string> {
    const name = this.link.spec!.credentialsSecret;
    const where = `secret ${this.link.metadata.namespace}/${name}`;
    const secret = (await this.options.store.get({ kind: 'Secret', namespace: this.link.metadata.namespace, name })) as Secret | undefined;
    if (!secret) throw new LinkProblem('CredentialsMissing', `${where} (spec.credentialsSecret) does not exist; run strait link again`);
    const token = secretValue(secret, 'token');
    if (!token) throw new LinkProblem('CredentialsMissing', `${where} has no token; run strait link again`);
    return token;
  }

  /** Refuses a target that is not the cluster the link was made for. */
  private checkInfo(info: InfoResponse): void {
    const spec = this.link.spec!;
    const at = `the mesh API at ${spec.gatewayAddress}`;
    if (info.cluster !== this.target) throw new LinkProblem('WrongCluster', `${at} is cluster ${info.cluster}'s, not ${this.target}'s; fix spec.gatewayAddress`);
    if (spec.targetClusterId && info.clusterId !== spec.targetClusterId) {
      throw new LinkProblem('WrongCluster', `${at} is another cluster named ${this.target} (id ${info.clusterId}, the link was made for ${spec.targetClusterId}); run strait link again`);
    }
    const own = new Set(trustAnchorFingerprints(this.options.identity));
    if (!info.trustAnchorFingerprints.some((f) => own.has(f))) throw new LinkProblem('TrustAnchorMismatch', `cluster ${this.target} shares no trust anchor with this cluster`);
    if (spec.trustAnchorFingerprint && !info.trustAnchorFingerprints.includes(spec.trustAnchorFingerprint)) {
      throw new LinkProblem('TrustAnchorMismatch', `cluster ${this.target} no longer has the trust anchor ${spec.trustAnchorFingerprint} the link was made with; run strait link again`);
    }
    const regionChanged = this.info !== undefined && this.info.region !== info.region;
    this.info = info;
    // Member slices carry the target's region.
    if (regionChanged) for (const key of this.remote.keys()) this.refresh(key);
  }

  private apply(update: WatchExportsResponse): void {
    for (const service of update.services) {
      const key = `${service.namespace}/${service.name}`;
      this.remote.set(key, service);
      this.refresh(key);
    }
    for (const ref of update.removed) {
      const key = `${ref.namespace}/${ref.name}`;
      this.remote.delete(key);
      this.refresh(key);
    }
    this.lastSync = new Date();
    if (update.synced) {
      // The first answer is complete: whatever was mirrored and is not exported any more goes.
      this.writer.markAll();
      this.log.info({ services: this.remote.size }, 'link: synced');
    }
    if (update.synced || this.conditions.get('Synced')?.status !== 'True') this.setCondition('Synced', 'True', 'Synced', '');
    this.scheduleStatus();
  }

  /**
   * Recomputes what one remote service has here: its mirror when it is sent as one (and the Link's
   * selector, if any, takes it), and its member slices when it is global or clusterset-exported.
   */
  private refresh(key: string): void {
    const service = this.remote.get(key);
    if (!service) {
      this.ignored.delete(key);
      return this.writer.set(key, undefined);
    }
    const selector = this.link.spec!.selector;
    const mirrored = service.mirror && (!selector || matchesSelector(service.labels, selector));
    const member = service.global ? 'global' : service.serviceExport ? 'import' : undefined;
    const problem = mirrored || member ? exportProblem(service, this.target) ?? (mirrored ? mirrorProblem(service, this.target) : undefined) : undefined;
    if (problem) {
      if (!this.ignored.has(key)) this.log.warn({ service: key }, `link: ignored: ${problem}`);
      this.ignored.add(key);
      return this.writer.set(key, undefined);
    }
    this.ignored.delete(key);
    const options: MirrorOptions = {
      cluster: this.target,
      gateway: this.link.spec!.gatewayAddress,
      gatewayAlive: this.health.usable,
      trustDomain: this.options.trustDomain,
      region: this.info?.region,
    };
    const parts = [...(mirrored ? [mirrorObjects(service, options)] : []), ...(member ? [memberSlices(service, member, options)] : [])];
    for (const p of parts.flatMap((part) => part.problems)) this.log.warn({ service: key }, `link: left out: ${p}`);
    this.writer.set(key, parts.length > 0 ? parts.flatMap((part) => part.objects) : undefined);
  }

  // ---- gateway probes ----

  private async probeLoop(gateway: { host: string; port: number }): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const result = await probeGateway({ address: gateway, cluster: this.target, trustDomain: this.options.trustDomain, identity: this.options.identity, timeoutMs: this.timing.timeoutMs, signal });
      if (signal.aborted) break;
      const usable = this.health.usable;
      this.health.record(result);
      if (this.health.alive === true) this.setCondition('GatewayAlive', 'True', 'ProbeSucceeded', `the gateway at ${this.link.spec!.gatewayAddress} answers its probes`);
      if (this.health.alive === false) this.setCondition('GatewayAlive', 'False', 'ProbeFailed', `${this.health.consecutiveFailures} probes failed in a row; last: ${this.health.lastError}`);
      if (usable !== this.health.usable) {
        this.log.warn({ alive: this.health.usable, err: this.health.lastError }, `link: the gateway of ${this.target} is ${this.health.usable ? 'back' : 'down; its endpoints are out of rotation'}`);
        for (const key of this.remote.keys()) this.refresh(key);
      }
      this.scheduleStatus();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.health.nextDelayMs(this.timing.periodMs));
        this.wakeProbe = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeProbe = undefined;
    }
  }

  // ---- status ----

  private setCondition(type: LinkCondition['type'], status: LinkCondition['status'], reason: string, message: string): void {
    const before = this.conditions.get(type);
    if (before?.status === status && before.reason === reason && before.message === message) return;
    const lastTransitionTime = before?.status === status ? before.lastTransitionTime : new Date().toISOString();
    this.conditions.set(type, { type, status, reason, message, lastTransitionTime });
    this.scheduleStatus();
  }

  private scheduleStatus(): void {
    if (this.statusTimer || this.stopping.signal.aborted) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      void this.writeStatus();
    }, STATUS_DELAY_MS);
  }

  private async writeStatus(): Promise<void> {
    const status = this.status();
    const text = JSON.stringify(status);
    if (text === this.writtenStatus) return;
    try {
      await this.options.store.updateStatus({ kind: 'Link', namespace: this.link.metadata.namespace, name: this.link.metadata.name }, status);
      this.writtenStatus = text;
    } catch (err) {
      // A Link deleted meanwhile is being stopped by its manager.
      if (!(err instanceof NotFoundError)) this.log.warn({ err: (err as Error).message }, 'link: cannot write the Link status');
    }
  }
}

/** A reason and a message for the Synced condition, saying what to do where there is something to do. */
function describeFailure(err: unknown, target: string, gateway: string): { reason: string; message: string } {
  if (err instanceof LinkProblem) return { reason: err.reason, message: err.message };
  const error = ConnectError.from(err);
  switch (error.code) {
    case Code.Unauthenticated:
      return { reason: 'CredentialsRejected', message: `cluster ${target} refused the link credential: ${error.rawMessage}` };
    case Code.PermissionDenied:
      return { reason: 'PermissionDenied', message: `cluster ${target} refused this cluster: ${error.rawMessage}` };
    case Code.DeadlineExceeded:
      return { reason: 'GatewayUnreachable', message: `the mesh API of ${target} did not answer through its gateway at ${gateway} in time` };
    default:
      return { reason: 'GatewayUnreachable', message: `cannot reach the mesh API of ${target} through its gateway at ${gateway}: ${error.rawMessage}` };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
