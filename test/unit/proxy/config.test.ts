import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseOutboundListeners, proxyConfigFromEnv, ProxyConfigError } from '../../../src/proxy/config.js';

const ENV = {
  POD_NAME: 'sleep-7b9c8d6f5-vwxyz',
  POD_NAMESPACE: 'sample',
  POD_IP: '127.20.1.5',
  STRAIT_CLUSTER: 'cluster1',
  STRAIT_CONTROL_PLANE: '127.20.0.1:8086',
  STRAIT_IDENTITY_TOKEN_FILE: '/state/pods/sleep/token',
  STRAIT_TRUST_ANCHORS: '/state/ca.crt',
  STRAIT_TRUST_DOMAIN: 'cluster.local',
  STRAIT_CONTROL_PLANE_IDENTITY: 'spiffe://cluster.local/ns/strait-system/sa/control-plane',
};

describe('proxy configuration from the environment', () => {
  it('reads every variable, with Linkerd’s ports', () => {
    const config = proxyConfigFromEnv({ ...ENV, STRAIT_OUTBOUND: '6379=redis.default:6379, 5432=db:5432' });
    assert.deepEqual(config, {
      pod: 'sleep-7b9c8d6f5-vwxyz',
      namespace: 'sample',
      podIp: '127.20.1.5',
      cluster: 'cluster1',
      controlPlane: { host: '127.20.0.1', port: 8086 },
      controlPlaneIdentity: 'spiffe://cluster.local/ns/strait-system/sa/control-plane',
      identityTokenFile: '/state/pods/sleep/token',
      trustAnchorsFile: '/state/ca.crt',
      trustDomain: 'cluster.local',
      ports: { outbound: 4140, inbound: 4143, admin: 4191 },
      outboundListeners: [
        { port: 6379, target: 'redis.default:6379' },
        { port: 5432, target: 'db:5432' },
      ],
    });
  });

  it('reports every problem at once, naming the variable', () => {
    const err = (() => {
      try {
        proxyConfigFromEnv({ ...ENV, POD_NAME: '', POD_IP: 'not-an-ip', STRAIT_CONTROL_PLANE: '127.20.0.1', STRAIT_TRUST_DOMAIN: 'Bad Domain', STRAIT_CONTROL_PLANE_IDENTITY: 'control-plane' });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof ProxyConfigError);
    assert.deepEqual(err.problems, [
      'POD_NAME is not set',
      'POD_IP: "not-an-ip" is not an IP address',
      'STRAIT_CONTROL_PLANE: "127.20.0.1" must be host:port, e.g. 127.20.0.1:8086',
      `STRAIT_TRUST_DOMAIN: "Bad Domain" is invalid: only lower-case letters, digits, '.', '-' and '_' are allowed (SPIFFE)`,
      'STRAIT_CONTROL_PLANE_IDENTITY: "control-plane" is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>',
    ]);
    assert.match(err.message, /^the proxy's configuration is invalid:\n {2}- POD_NAME is not set/);
  });

  it('rejects malformed strait.dev/outbound entries, each with its reason', () => {
    const { listeners, problems } = parseOutboundListeners('6379=redis:6379,6379=other:1,abc=x:1,7000,8000=redis,4140=x:1,70000=x:1', [4140, 4143, 4191]);
    assert.deepEqual(listeners, [{ port: 6379, target: 'redis:6379' }]);
    assert.deepEqual(problems, [
      'STRAIT_OUTBOUND: port 6379 is listed twice',
      'STRAIT_OUTBOUND: "abc=x:1": "abc" is not a port from 1 to 65535',
      'STRAIT_OUTBOUND: "7000" is not port=target (e.g. 6379=redis.default:6379)',
      'STRAIT_OUTBOUND: "8000=redis": the target "redis" must be host:port, e.g. redis.default:6379',
      `STRAIT_OUTBOUND: "4140=x:1": port 4140 is one of the proxy's own ports (4140, 4143, 4191)`,
      'STRAIT_OUTBOUND: "70000=x:1": "70000" is not a port from 1 to 65535',
    ]);
  });
});
