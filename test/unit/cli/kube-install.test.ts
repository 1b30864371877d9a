import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { changedByApply } from '../../../src/cli/kube-install.js';
import type { KubeObject } from '../../../src/control/kube-api.js';

const object = (metadata: Partial<KubeObject['metadata']>, extra: Record<string, unknown> = {}): KubeObject => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'strait-control-plane', ...metadata }, ...extra });

describe('what install counts as configured', () => {
  const wanted = object({ labels: { 'app.kubernetes.io/part-of': 'strait' } });

  it('not a status the controllers wrote between the read and the apply (the resourceVersion moved, the generation did not)', () => {
    const old = object({ resourceVersion: '438', generation: 1, labels: { 'app.kubernetes.io/part-of': 'strait' } });
    const now = object({ resourceVersion: '449', generation: 1, labels: { 'app.kubernetes.io/part-of': 'strait' }, annotations: { 'deployment.kubernetes.io/revision': '1' } });
    assert.equal(changedByApply(wanted, old, now), false);
  });

  it('a spec change (the generation moves), or a label install sets', () => {
    const old = object({ resourceVersion: '438', generation: 1, labels: { 'app.kubernetes.io/part-of': 'strait' } });
    assert.equal(changedByApply(wanted, old, object({ resourceVersion: '450', generation: 2, labels: { 'app.kubernetes.io/part-of': 'strait' } })), true);
    assert.equal(changedByApply(wanted, object({ resourceVersion: '438', generation: 1, labels: { 'app.kubernetes.io/part-of': 'other' } }), object({ resourceVersion: '450', generation: 1, labels: { 'app.kubernetes.io/part-of': 'strait' } })), true);
  });

  it('objects without a generation (ConfigMaps, Secrets, Services) by their resourceVersion', () => {
    const config = (rv: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'strait-trust-anchors', namespace: 'strait-system', resourceVersion: rv } });
    assert.equal(changedByApply(config('1'), config('416'), config('416')), false);
    assert.equal(changedByApply(config('1'), config('416'), config('417')), true);
  });
});
