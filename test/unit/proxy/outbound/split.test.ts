import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pickWeighted, usableBackends } from '../../../../src/proxy/outbound/logical/split.js';

describe('weighted backend choice', () => {
  const legs = [
    { name: 'v1', weight: 80, ready: true },
    { name: 'v2', weight: 20, ready: true },
  ];

  it('maps the random draw onto the weights', () => {
    const { usable, totalWeight } = usableBackends(legs, (b) => b.ready);
    assert.equal(totalWeight, 100);
    assert.equal(pickWeighted(usable, totalWeight, () => 0)?.name, 'v1');
    assert.equal(pickWeighted(usable, totalWeight, () => 0.7999)?.name, 'v1');
    assert.equal(pickWeighted(usable, totalWeight, () => 0.8)?.name, 'v2');
    assert.equal(pickWeighted(usable, totalWeight, () => 0.99999)?.name, 'v2');
  });

  it('splits by weight over many draws', () => {
    const { usable, totalWeight } = usableBackends(legs, (b) => b.ready);
    const counts = { v1: 0, v2: 0 };
    for (let i = 0; i < 1000; i++) counts[pickWeighted(usable, totalWeight, () => i / 1000)!.name as 'v1' | 'v2']++;
    assert.deepEqual(counts, { v1: 800, v2: 200 });
  });

  it('skips backends that cannot serve and those with no weight, giving their share to the rest', () => {
    const { usable, totalWeight } = usableBackends(
      [
        { name: 'v1', weight: 50, ready: true },
        { name: 'v2', weight: 50, ready: false },
        { name: 'v3', weight: 0, ready: true },
      ],
      (b) => b.ready,
    );
    assert.deepEqual(usable.map((b) => b.name), ['v1']);
    assert.equal(pickWeighted(usable, totalWeight, () => 0.9)?.name, 'v1');
  });

  it('has nothing to pick when no backend can serve', () => {
    const { usable, totalWeight } = usableBackends(legs, () => false);
    assert.equal(pickWeighted(usable, totalWeight, Math.random), undefined);
  });
});
