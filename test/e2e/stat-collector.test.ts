// The metrics collector against real HTTP servers that serve Prometheus text which changes over
// time, as proxies' admin ports do: scraping, windows, restarts, deleted pods, bad and slow answers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pod } from '../../src/api/kinds.js';
import { PROXY_CONTAINER } from '../../src/api/mesh.js';
import { MetricsCollector } from '../../src/control/metrics/collector.js';
import type { PodTraffic } from '../../src/control/metrics/history.js';
import { proxyText, type ProxySpec } from '../unit/metrics/fixtures.js';
import { waitFor } from '../support/cli.js';

const IN = { direction: 'inbound', authority: 'web:80' };

/** An admin port whose answer the test sets; counts how often it was read. */
class FakeAdmin {
  reads = 0;
  answer: { status: number; body: string } | 'hang' = { status: 200, body: proxyText({}) };
  server!: Server;

  set(spec: ProxySpec): void {
    this.answer = { status: 200, body: proxyText(spec) };
  }

  async listen(): Promise<number> {
    this.server = http.createServer((req, res) => {
      this.reads++;
      const answer = this.answer;
      if (answer === 'hang') return; // never answers
      res.writeHead(answer.status, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(answer.body);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

function pod(name: string, adminPort: number, opts: { meshed?: boolean; phase?: 'Running' | 'Pending'; uid?: string } = {}): Pod {
  const proxy = { name: PROXY_CONTAINER, image: 'strait/proxy', ports: [{ name: 'admin', containerPort: adminPort }] };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'sample', uid: opts.uid ?? `uid-${name}` },
    spec: { containers: [{ name: 'app', image: 'x' }, ...(opts.meshed === false ? [] : [proxy])] },
    status: { phase: opts.phase ?? 'Running', podIP: '127.0.0.1' },
  } as Pod;
}

const successes = (p: PodTraffic | undefined) =>
  (p?.counters ?? []).filter((c) => c.metric === 'response_total' && c.labels.classification === 'success').reduce((a, c) => a + c.value, 0);

describe('metrics collector against live admin ports', () => {
  const admins = { web: new FakeAdmin(), unmeshed: new FakeAdmin(), pending: new FakeAdmin(), bad: new FakeAdmin(), slow: new FakeAdmin() };
  const ports: Record<string, number> = {};
  let pods: Pod[] = [];
  let collector: MetricsCollector;
  /** The web proxy started an hour ago. */
  const start = Math.floor(Date.now() / 1000) - 3600;

  before(async () => {
    for (const [name, admin] of Object.entries(admins)) ports[name] = await admin.listen();
    admins.web.set({ startSeconds: start, http: [{ labels: IN, success: 100 }] });
    admins.bad.answer = { status: 200, body: 'response_total{classification="success" 3\n' };
    admins.slow.answer = 'hang';
    pods = [
      pod('web', ports.web!),
      pod('unmeshed', ports.unmeshed!, { meshed: false }),
      pod('pending', ports.pending!, { phase: 'Pending' }),
      pod('bad', ports.bad!),
      pod('slow', ports.slow!),
    ];
    collector = new MetricsCollector({ pods: () => Promise.resolve(pods), intervalMs: 50, timeoutMs: 200 });
  });

  after(() => {
    collector.stop();
    for (const admin of Object.values(admins)) admin.close();
  });

  it('reads only meshed, running pods, and reports why a pod could not be read', async () => {
    await collector.scrape();
    const w = await collector.stats(60);
    assert.deepEqual(w.pods.map((p) => p.pod), ['bad', 'slow', 'web']);
    assert.equal(admins.unmeshed.reads + admins.pending.reads, 0);
    const bad = w.pods.find((p) => p.pod === 'bad')!;
    assert.match(bad.error ?? '', new RegExp(`http://127\\.0\\.0\\.1:${ports.bad}/metrics is not Prometheus text: line 1: expected "," or "}"`));
    const slow = w.pods.find((p) => p.pod === 'slow')!;
    assert.match(slow.error ?? '', /no complete answer within 200 ms/);
    assert.equal(w.pods.find((p) => p.pod === 'web')!.error, undefined);
  });

  it('gives what changed since the first read, and survives a proxy restart', async () => {
    admins.web.set({ startSeconds: start, http: [{ labels: IN, success: 130 }] });
    let w = await collector.stats(60);
    assert.equal(successes(w.pods.find((p) => p.pod === 'web')), 30);
    // The proxy restarts and counts 4 more: 30 + 4.
    admins.web.set({ startSeconds: start + 1800, http: [{ labels: IN, success: 4 }] });
    w = await collector.stats(60);
    const web = w.pods.find((p) => p.pod === 'web')!;
    assert.equal(successes(web), 34);
    assert.ok(web.seconds > 0 && web.seconds < 60, `covers ${web.seconds} s`);
    assert.ok(web.scrapedAt && Date.parse(web.scrapedAt) <= Date.parse(w.at));
  });

  it('reads on its interval once started', async () => {
    const before = admins.web.reads;
    collector.start();
    await waitFor('three interval reads', () => admins.web.reads >= before + 3, 5000, 20);
  });

  it('forgets deleted pods, and treats a pod recreated under the same name as new', async () => {
    pods = pods.filter((p) => p.metadata.name !== 'bad' && p.metadata.name !== 'slow');
    let w = await collector.stats(60);
    assert.deepEqual(w.pods.map((p) => p.pod), ['web']);
    pods = [pod('web', ports.web!, { uid: 'uid-web-2' })];
    w = await collector.stats(60);
    assert.equal(successes(w.pods[0]), 0, 'a new pod has no history yet');
  });

  it('refuses a window longer than its history', async () => {
    await assert.rejects(collector.stats(3600), (err: unknown) => err instanceof RangeError && /at most 600 seconds/.test(err.message));
    await assert.rejects(collector.stats(0), RangeError);
  });
});
