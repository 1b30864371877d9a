// The gateway health state machine: down after `failureThreshold` consecutive failed probes, up
// after one success; failures short of the threshold are confirmed sooner; latency percentiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIRM_DELAY_MS, GatewayHealth } from '../../../src/control/links/probe.js';

const ok = (latencyMs = 1) => ({ ok: true as const, latencyMs });
const fail = (error = 'connection refused') => ({ ok: false as const, error });

test('unknown at first, and usable: a link that has not probed yet does not take endpoints out', () => {
  const health = new GatewayHealth(3);
  assert.equal(health.alive, undefined);
  assert.equal(health.usable, true);
  assert.deepEqual(health.status(), { consecutiveFailures: 0 });
});

test('down only after the threshold of consecutive failures; one success brings it back', () => {
  const health = new GatewayHealth(3);
  assert.equal(health.record(ok()), true);
  assert.equal(health.record(fail()), false);
  assert.equal(health.record(fail()), false);
  assert.equal(health.usable, true, 'two failures are not three');
  assert.equal(health.record(fail('no answer within 1000 ms')), true);
  assert.equal(health.alive, false);
  assert.equal(health.usable, false);
  assert.deepEqual({ ...health.status(), lastProbeTime: undefined }, { alive: false, latencyMs: { p50: 1, p95: 1, p99: 1 }, lastProbeTime: undefined, consecutiveFailures: 3, lastError: 'no answer within 1000 ms' });
  assert.equal(health.record(fail()), false, 'staying down is no change');
  assert.equal(health.record(ok()), true);
  assert.equal(health.alive, true);
  assert.equal(health.consecutiveFailures, 0);
  assert.equal(health.lastError, undefined);
});

test('a success between failures starts the count again', () => {
  const health = new GatewayHealth(2);
  health.record(fail());
  health.record(ok());
  health.record(fail());
  assert.equal(health.usable, true);
  health.record(fail());
  assert.equal(health.usable, false);
});

test('from unknown, the threshold of failures marks it down', () => {
  const health = new GatewayHealth(1);
  assert.equal(health.record(fail()), true);
  assert.equal(health.alive, false);
});

test('a failure is confirmed sooner than the period; once down, probes return to the period', () => {
  const health = new GatewayHealth(3);
  assert.equal(health.nextDelayMs(3000), 3000);
  health.record(fail());
  assert.equal(health.nextDelayMs(3000), CONFIRM_DELAY_MS);
  assert.equal(health.nextDelayMs(200), 200, 'never later than the period');
  health.record(fail());
  health.record(fail());
  assert.equal(health.nextDelayMs(3000), 3000);
});

test('latency percentiles are over recent successful probes, nearest rank', () => {
  const health = new GatewayHealth(3);
  assert.equal(health.latency(), undefined);
  for (let ms = 1; ms <= 100; ms++) health.record(ok(ms));
  health.record(fail());
  assert.deepEqual(health.latency(), { p50: 50, p95: 95, p99: 99 });
  // Only the last 100 count.
  for (let i = 0; i < 100; i++) health.record(ok(7));
  assert.deepEqual(health.latency(), { p50: 7, p95: 7, p99: 7 });
});
