// The concrete stage: a pick is a lease that keeps the balancer's books from what the call reports,
// and the one connect-attempt loop moves on to another endpoint when connecting fails.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer, BACKOFF_INITIAL_MS, SharedBackoff } from '../../../../src/proxy/outbound/concrete/balancer.js';
import { MAX_ATTEMPTS, tryEndpoints } from '../../../../src/proxy/outbound/concrete/attempts.js';
import { ConnectFailed } from '../../../../src/proxy/outbound/endpoint/target.js';
import { StaticResolver } from '../../../../src/proxy/static-resolver.js';
import { destination, logger, plainEndpoint, routeTable } from '../fixtures.js';

function manualClock(start = 1000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('lease', () => {
  it('counts the call in flight from the pick until it finishes, and learns its latency and status', () => {
    const clock = manualClock();
    const answers: [string, number, number][] = [];
    const balancer = new Balancer<string>('ewma', { clock: clock.now, onAnswer: (t, status, ms) => answers.push([t, status, ms]) });
    balancer.update(['a'], (t) => t);
    const a = balancer.endpoints[0]!;
    const lease = balancer.lease(balancer.pick()!);
    assert.equal(a.pending, 1);
    lease.connected();
    lease.finished(200, 250);
    assert.equal(a.pending, 0);
    assert.equal(a.ewma.value(clock.now()), 250, 'a slower answer than the estimate replaces it');
    assert.deepEqual(answers, [['a', 200, 250]]);
    lease.finished(200, 1); // a second report of the same call changes nothing
    lease.failed(new Error('late'));
    assert.equal(a.pending, 0);
    assert.equal(a.failures, 0);
    assert.equal(answers.length, 1);
  });

  it('a call that broke before an answer is timed but not counted as an answer', () => {
    const answers: number[] = [];
    const balancer = new Balancer<string>('ewma', { onAnswer: (_t, status) => answers.push(status) });
    balancer.update(['a'], (t) => t);
    balancer.lease(balancer.endpoints[0]!).finished(0, 5);
    assert.deepEqual(answers, []);
    assert.equal(balancer.endpoints[0]!.pending, 0);
  });

  it('a failed connect backs the endpoint off; an unreachable gateway backs off all behind it', () => {
    const clock = manualClock();
    const gateway = new SharedBackoff('gw');
    const balancer = new Balancer<string>('round-robin', { clock: clock.now, sharedBackoffOf: () => gateway });
    balancer.update(['a', 'b'], (t) => t);
    const [a, b] = balancer.endpoints;
    balancer.lease(a!).failed(new ConnectFailed('refused by the endpoint'));
    assert.equal(a!.pending, 0);
    assert.equal(a!.backoffUntil - clock.now(), BACKOFF_INITIAL_MS);
    assert.equal(gateway.failures, 0);
    balancer.lease(b!).failed(new ConnectFailed('the gateway is down', true));
    assert.equal(gateway.failures, 1);
    assert.ok(b!.inBackoff(clock.now()) && a!.inBackoff(clock.now()));
    // A connect through the gateway clears it for everyone, and the endpoint's own record.
    clock.advance(BACKOFF_INITIAL_MS);
    balancer.lease(a!).connected();
    assert.equal(gateway.failures, 0);
    assert.equal(a!.failures, 0);
  });
});

describe('connect attempts', () => {
  const endpoints = [plainEndpoint(1001), plainEndpoint(1002), plainEndpoint(1003), plainEndpoint(1004)];

  it('tries another endpoint after each failed connect, backs each off, and gives up after a few', () => {
    const routes = routeTable(new StaticResolver({ web: destination(endpoints) }));
    const route = routes.get('web:80');
    const { log, lines } = logger();
    const tried: number[] = [];
    let gaveUp: [number, string, number | undefined] | undefined;
    tryEndpoints(route, log, {
      attempt: (pick, retry) => {
        tried.push(pick.target.endpoint.port);
        retry(new ConnectFailed(`cannot connect to ${pick.target.endpoint.port}`));
      },
      giveUp: (status, message, last) => (gaveUp = [status, message, last?.target.endpoint.port]),
    });
    assert.equal(tried.length, MAX_ATTEMPTS);
    assert.equal(new Set(tried).size, MAX_ATTEMPTS, 'never the same endpoint twice');
    assert.deepEqual(gaveUp, [502, `cannot connect to ${tried.at(-1)}`, tried.at(-1)]);
    assert.equal(lines.filter((l) => l.includes('connect failed; trying another endpoint')).length, MAX_ATTEMPTS);
    const snapshot = routes.snapshot()[0] as { backends: { endpoints: { port: number; failures: number; pending: number }[] }[] };
    for (const e of snapshot.backends[0]!.endpoints) {
      assert.equal(e.failures, tried.includes(e.port) ? 1 : 0);
      assert.equal(e.pending, 0, 'a failed attempt is no longer in flight');
    }
  });

  it('stops at the first endpoint that connects', () => {
    const route = routeTable(new StaticResolver({ web: destination(endpoints) })).get('web:80');
    let attempts = 0;
    let gaveUp = false;
    tryEndpoints(route, logger().log, {
      attempt: (pick, retry) => {
        if (++attempts === 1) return retry(new Error('refused'));
        pick.finished(200, 1);
      },
      giveUp: () => (gaveUp = true),
    });
    assert.equal(attempts, 2);
    assert.equal(gaveUp, false);
  });

  it('answers 503 with the reason when there is nothing to try, 502 with the last error when everything failed', () => {
    const routes = routeTable(new StaticResolver({ one: destination([plainEndpoint(1001)]) }));
    const outcomes: [number, string][] = [];
    const giveUp = (status: number, message: string) => void outcomes.push([status, message]);
    tryEndpoints(routes.get('nosuch:80'), logger().log, { attempt: () => assert.fail('nothing to attempt'), giveUp });
    tryEndpoints(routes.get('one:80'), logger().log, { attempt: (_pick, retry) => retry(new Error('refused')), giveUp });
    assert.deepEqual(outcomes, [
      [503, 'no such service "nosuch:80"'],
      [502, 'refused'],
    ]);
  });
});
