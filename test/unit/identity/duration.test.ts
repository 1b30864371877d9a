import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatLifetime, parseLifetime } from '../../../src/identity/duration.js';

describe('lifetimes', () => {
  it("parse step's and Go's forms, plus days and years", () => {
    assert.equal(parseLifetime('8760h'), 365 * 86_400_000);
    assert.equal(parseLifetime('1h30m'), 90 * 60_000);
    assert.equal(parseLifetime('90s'), 90_000);
    assert.equal(parseLifetime('1.5h'), 90 * 60_000);
    assert.equal(parseLifetime('365d'), 365 * 86_400_000);
    assert.equal(parseLifetime('10y'), 3650 * 86_400_000);
    assert.equal(parseLifetime('250ms'), 250);
  });

  it('reject anything else, quoting the text', () => {
    assert.throws(() => parseLifetime(''), /"" is not a duration/);
    assert.throws(() => parseLifetime('10'), /"10" is not a duration/);
    assert.throws(() => parseLifetime('1h 30m'), /"1h 30m" is not a duration/);
    assert.throws(() => parseLifetime('-1h'), /"-1h" is not a duration/);
    assert.throws(() => parseLifetime('0h'), /not a positive duration/);
    assert.throws(() => parseLifetime('5w'), /not a duration/);
  });

  it('format with the largest units', () => {
    assert.equal(formatLifetime(3650 * 86_400_000), '10y');
    assert.equal(formatLifetime(365 * 86_400_000), '1y');
    assert.equal(formatLifetime(86_400_000 + 60_000), '1d1m');
    assert.equal(formatLifetime(90 * 60_000), '1h30m');
    assert.equal(formatLifetime(400), '400ms');
  });
});
