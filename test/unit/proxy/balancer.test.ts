import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, DEFAULT_RTT_MS, EWMA_DECAY_MS, PeakEwma } from '../../../src/proxy/balancer.js';

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
