import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, SharedBackoff } from '../../../../src/proxy/outbound/concrete/balancer.js';
import { DEFAULT_RTT_MS, EWMA_DECAY_MS, PeakEwma } from '../../../../src/proxy/outbound/concrete/ewma.js';

/** A clock the test moves by hand. */
function manualClock(start = 1000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** A fixed sequence of "random" numbers, repeated. */
function sequence(values: number[]) {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('peak EWMA', () => {
  it('starts at the default RTT and jumps to a slower observation at once', () => {
    const ewma = new PeakEwma(0);
    assert.equal(ewma.value(0), DEFAULT_RTT_MS);
    ewma.observe(200, 1);
    assert.equal(ewma.value(1), 200);
  });

  it('blends faster observations in by how much time has passed', () => {
    const ewma = new PeakEwma(0, 100);
    ewma.observe(10, 0); // no time has passed: the old estimate keeps all its weight
    assert.equal(ewma.value(0), 100);
    const later = new PeakEwma(0, 100);
    later.observe(10, EWMA_DECAY_MS); // one decay period: weight e^-1 on the old estimate
    const expected = 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1));
    assert.ok(Math.abs(later.value(EWMA_DECAY_MS) - expected) < 1e-9);
  });

  it('decays toward zero while idle, so an endpoint that was slow gets tried again', () => {
    const ewma = new PeakEwma(0, 500);
    assert.ok(Math.abs(ewma.value(EWMA_DECAY_MS) - 500 * Math.exp(-1)) < 1e-9);
    assert.ok(ewma.value(10 * EWMA_DECAY_MS) < 1);
  });
});

describe('balancer', () => {
  const targets = ['a', 'b', 'c'];

  it('power of two choices picks the cheaper of two distinct random endpoints', () => {
    const clock = manualClock();
    // i = floor(0 × 3) = 0 (a); j = floor(0 × 2) = 0, shifted past i → 1 (b)
    const balancer = new Balancer<string>('ewma', { clock: clock.now, random: sequence([0, 0]) });
    balancer.update(targets, (t) => t);
    const [a, b] = balancer.endpoints;
    // a is slow: b wins.
    const started = balancer.started(a!);
    clock.advance(100);
    balancer.finished(a!, started);
    assert.equal(balancer.pick()?.target, 'b');
    // b now has requests in flight, which multiply its cost: (pending + 1) × RTT.
    for (let i = 0; i < 5; i++) balancer.started(b!);
    assert.equal(balancer.pick()?.target, 'a');
  });

  it('never compares an endpoint with itself', () => {
    const clock = manualClock();
    // With the same draw for i and j, j is shifted past i: a slow endpoint still loses.
    const balancer = new Balancer<string>('ewma', { clock: clock.now, random: sequence([0.2]) });
    balancer.update(['a', 'b'], (t) => t);
    const a = balancer.endpoints[0]!;
    balancer.finished(a, balancer.started(a) - 1000);
    for (let i = 0; i < 5; i++) assert.equal(balancer.pick()?.target, 'b');
  });

  it('a new endpoint starts at the median latency of the known ones, so it is not starved', () => {
    const clock = manualClock();
    const balancer = new Balancer<string>('ewma', { clock: clock.now });
    balancer.update(['a', 'b'], (t) => t);
    for (const state of balancer.endpoints) {
      // Many fast answers over a minute bring the 30 ms guess down to about 2 ms.
      for (let i = 0; i < 60; i++) {
        const started = balancer.started(state);
        clock.advance(2);
        balancer.finished(state, started);
        clock.advance(998);
      }
    }
    const known = balancer.endpoints.map((s) => s.ewma.value(clock.now()));
    assert.ok(known.every((v) => v < 3), `known estimates ${known.join(', ')}`);
    balancer.update(['a', 'b', 'c'], (t) => t);
    const c = balancer.endpoints.find((s) => s.target === 'c')!;
    assert.ok(c.ewma.value(clock.now()) < 3, `the new endpoint starts at ${c.ewma.value(clock.now())} ms`);
    // Calls one after another, each answered in 2 ms by whichever endpoint: c takes its share at once.
    const picks = Array.from({ length: 300 }, () => {
      const state = balancer.pick()!;
      const started = balancer.started(state);
      clock.advance(2);
      balancer.finished(state, started);
      clock.advance(50);
      return state.target;
    });
    const share = picks.filter((t) => t === 'c').length;
    assert.ok(share > 50, `the new endpoint took ${share} of 300`);
  });

  it('round-robin visits every endpoint in turn', () => {
    const balancer = new Balancer<string>('round-robin');
    balancer.update(targets, (t) => t);
    const picks = Array.from({ length: 6 }, () => balancer.pick()?.target);
    assert.deepEqual(picks.slice(0, 3).sort(), targets);
    assert.deepEqual(picks.slice(3), picks.slice(0, 3));
  });

  it('keeps latency and back-off state across updates for endpoints that stay', () => {
    const clock = manualClock();
    const balancer = new Balancer<string>('ewma', { clock: clock.now });
    balancer.update(['a', 'b'], (t) => t);
    const a = balancer.endpoints[0]!;
    balancer.connectFailed(a);
    balancer.update(['b', 'a', 'c'], (t) => t);
    assert.equal(balancer.endpoints[1], a);
    assert.equal(a.failures, 1);
    assert.equal(balancer.endpoints.length, 3);
  });

  it('skips an endpoint in back-off while others remain, with a back-off that doubles up to a cap', () => {
    const clock = manualClock();
    const balancer = new Balancer<string>('round-robin', { clock: clock.now });
    balancer.update(['a', 'b'], (t) => t);
    const [a] = balancer.endpoints;
    balancer.connectFailed(a!);
    assert.equal(a!.backoffUntil - clock.now(), BACKOFF_INITIAL_MS);
    for (let i = 0; i < 4; i++) assert.equal(balancer.pick()?.target, 'b');
    balancer.connectFailed(a!);
    assert.equal(a!.backoffUntil - clock.now(), 2 * BACKOFF_INITIAL_MS);
    for (let i = 0; i < 30; i++) balancer.connectFailed(a!);
    assert.equal(a!.backoffUntil - clock.now(), BACKOFF_MAX_MS);
    // Once the back-off is over it is picked again; a success clears its record.
    clock.advance(BACKOFF_MAX_MS);
    assert.ok(Array.from({ length: 4 }, () => balancer.pick()?.target).includes('a'));
    balancer.connected(a!);
    assert.equal(a!.failures, 0);
  });

  it('uses endpoints in back-off when nothing else is left, and never one already tried', () => {
    const balancer = new Balancer<string>('ewma');
    balancer.update(['a', 'b'], (t) => t);
    const [a, b] = balancer.endpoints;
    balancer.connectFailed(a!);
    balancer.connectFailed(b!);
    assert.ok(balancer.pick() !== undefined);
    assert.equal(balancer.pick(new Set([a!]))?.target, 'b');
    assert.equal(balancer.pick(new Set([a!, b!])), undefined);
  });

  it('has nothing to pick with no endpoints', () => {
    const balancer = new Balancer<string>('ewma');
    balancer.update([], (t) => t);
    assert.equal(balancer.pick(), undefined);
  });
});

describe('balancer tiers', () => {
  /** An endpoint as the tests describe it: a name, its tier, and the gateway it is reached through. */
  interface Target {
    name: string;
    tier: number;
    gateway?: SharedBackoff;
  }
  const target = (name: string, tier: number, gateway?: SharedBackoff): Target => ({ name, tier, ...(gateway ? { gateway } : {}) });

  function tiered(kind: 'ewma' | 'round-robin', targets: Target[], clock = manualClock()) {
    const balancer = new Balancer<Target>(kind, { clock: clock.now, tierOf: (t) => t.tier, sharedBackoffOf: (t) => t.gateway });
    balancer.update(targets, (t) => t.name);
    const state = (name: string) => balancer.endpoints.find((s) => s.target.name === name)!;
    const picks = (n: number) => new Set(Array.from({ length: n }, () => balancer.pick()?.target.name));
    return { balancer, clock, state, picks };
  }

  for (const kind of ['ewma', 'round-robin'] as const) {
    it(`${kind}: balances over the most preferred tier only, and falls to the next when its endpoints back off`, () => {
      const { balancer, state, picks } = tiered(kind, [target('local-a', 0), target('local-b', 0), target('remote-a', 1), target('far-a', 2)]);
      assert.deepEqual(picks(40), new Set(['local-a', 'local-b']));
      assert.equal(balancer.activeTier(), 0);
      balancer.connectFailed(state('local-a'));
      assert.deepEqual(picks(20), new Set(['local-b']), 'the rest of tier 0 takes everything');
      balancer.connectFailed(state('local-b'));
      assert.deepEqual(picks(20), new Set(['remote-a']), 'tier 0 is gone: tier 1');
      assert.equal(balancer.activeTier(), 1);
      balancer.connectFailed(state('remote-a'));
      assert.deepEqual(picks(20), new Set(['far-a']), 'then tier 2');
    });
  }

  it('returns to a better tier as soon as its back-off ends, and stays there once it connects', () => {
    const { balancer, clock, state, picks } = tiered('ewma', [target('local', 0), target('remote', 1)]);
    balancer.connectFailed(state('local'));
    assert.deepEqual(picks(10), new Set(['remote']));
    clock.advance(BACKOFF_INITIAL_MS - 1);
    assert.deepEqual(picks(10), new Set(['remote']));
    clock.advance(1);
    assert.deepEqual(picks(10), new Set(['local']), 'the back-off is over: tier 0 is tried again');
    balancer.connected(state('local'));
    assert.equal(state('local').failures, 0);
    assert.deepEqual(picks(10), new Set(['local']));
  });

  it('a tried endpoint is skipped within its tier before the next tier is used', () => {
    const { balancer, state } = tiered('round-robin', [target('a', 0), target('b', 0), target('c', 1)]);
    const tried = new Set([state('a')]);
    assert.equal(balancer.pick(tried)?.target.name, 'b');
    tried.add(state('b'));
    assert.equal(balancer.pick(tried)?.target.name, 'c');
    tried.add(state('c'));
    assert.equal(balancer.pick(tried), undefined);
  });

  it('with every endpoint in back-off, uses the most preferred tier rather than none', () => {
    const { balancer, state, picks } = tiered('ewma', [target('a', 0), target('b', 1)]);
    balancer.connectFailed(state('a'));
    balancer.connectFailed(state('b'));
    assert.deepEqual(picks(10), new Set(['a']));
  });

  it('follows tier changes that keep the endpoint (its latency and back-off stay)', () => {
    const { balancer, state, picks } = tiered('ewma', [target('a', 0), target('b', 1)]);
    const a = state('a');
    balancer.connectFailed(a);
    balancer.update([target('a', 1), target('b', 0)], (t) => t.name);
    assert.equal(state('a'), a);
    assert.equal(a.tier, 1);
    assert.ok(a.inBackoff(balancer.clock()));
    assert.deepEqual(picks(10), new Set(['b']));
  });

  it("a gateway that cannot be reached backs off every endpoint behind it at once, across balancers", () => {
    const clock = manualClock();
    const gateway2 = new SharedBackoff('127.20.1.2:4143');
    const gateway3 = new SharedBackoff('127.20.2.2:4143');
    const one = tiered('ewma', [target('c2-a', 0, gateway2), target('c2-b', 0, gateway2), target('c3-a', 1, gateway3)], clock);
    // Another route (another service) reached through the same gateway.
    const other = tiered('ewma', [target('c2-x', 0, gateway2), target('c3-x', 1, gateway3)], clock);
    one.balancer.connectFailed(one.state('c2-a'), true);
    assert.equal(gateway2.failures, 1);
    assert.deepEqual(one.picks(20), new Set(['c3-a']), 'c2-b was never tried, yet it is left with its gateway');
    assert.deepEqual(other.picks(20), new Set(['c3-x']), 'the other route leaves cluster2 too, without a failure of its own');
    // A failure behind a live gateway (the endpoint itself) backs off that endpoint only.
    clock.advance(BACKOFF_INITIAL_MS);
    one.balancer.connectFailed(one.state('c2-a'));
    assert.equal(gateway2.failures, 1);
    assert.deepEqual(one.picks(20), new Set(['c2-b']));
    // A connect through the gateway clears its back-off for everyone.
    gateway2.failed(clock.now());
    assert.deepEqual(other.picks(10), new Set(['c3-x']));
    other.balancer.connected(other.state('c2-x'));
    assert.equal(gateway2.failures, 0);
    assert.deepEqual(other.picks(10), new Set(['c2-x']));
  });

  it('the shared back-off grows with consecutive gateway failures, to the same cap', () => {
    const clock = manualClock();
    const gateway = new SharedBackoff('gw');
    gateway.failed(clock.now());
    assert.equal(gateway.until - clock.now(), BACKOFF_INITIAL_MS);
    gateway.failed(clock.now());
    assert.equal(gateway.until - clock.now(), 2 * BACKOFF_INITIAL_MS);
    for (let i = 0; i < 30; i++) gateway.failed(clock.now());
    assert.equal(gateway.until - clock.now(), BACKOFF_MAX_MS);
  });
});
