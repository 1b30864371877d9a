import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseServiceName, serviceFqdn, targetFqdn } from '../../../src/control/discovery/names.js';
import { portProtocol } from '../../../src/control/discovery/protocol.js';

describe('service names', () => {
  const sample = { namespace: 'sample', service: 'helloworld' };

  it('reads every form a pod can use, as Kubernetes DNS does', () => {
    assert.deepEqual(parseServiceName('helloworld', 'sample'), { target: sample });
    assert.deepEqual(parseServiceName('helloworld', 'other'), { target: { namespace: 'other', service: 'helloworld' } });
    assert.deepEqual(parseServiceName('helloworld.sample', 'other'), { target: sample });
    assert.deepEqual(parseServiceName('helloworld.sample.svc', 'other'), { target: sample });
    assert.deepEqual(parseServiceName('helloworld.sample.svc.cluster.local', 'other'), { target: sample });
    assert.deepEqual(parseServiceName('helloworld.sample.svc.cluster.local.', 'other'), { target: sample }, 'a trailing dot is the same name');
    assert.deepEqual(parseServiceName('HelloWorld.Sample', 'other'), { target: sample }, 'names are case-insensitive');
  });

  it('keeps the port when the name carries one', () => {
    assert.deepEqual(parseServiceName('helloworld:5000', 'sample'), { target: { ...sample, port: 5000 } });
    assert.deepEqual(parseServiceName('helloworld.sample.svc.cluster.local:5000', 'x'), { target: { ...sample, port: 5000 } });
  });

  it('uses the configured cluster domain', () => {
    assert.deepEqual(parseServiceName('helloworld.sample.svc.mesh.example', 'x', 'mesh.example'), { target: sample });
    assert.match(problemOf(parseServiceName('helloworld.sample.svc.cluster.local', 'x', 'mesh.example')), /not a service name: expected <service>\[\.<namespace>\[\.svc\[\.mesh\.example\]\]\]/);
  });

  it('says why a name is not a service name', () => {
    assert.equal(problemOf(parseServiceName('', 'sample')), 'the name is empty');
    assert.equal(problemOf(parseServiceName('helloworld:http', 'sample')), '"helloworld:http" has an invalid port "http": expected 1-65535');
    assert.equal(problemOf(parseServiceName('helloworld:0', 'sample')), '"helloworld:0" has an invalid port "0": expected 1-65535');
    assert.equal(problemOf(parseServiceName('helloworld:65536', 'sample')), '"helloworld:65536" has an invalid port "65536": expected 1-65535');
    assert.match(problemOf(parseServiceName('www.example.com', 'sample')), /"www.example.com" is not a service name/);
    assert.match(problemOf(parseServiceName('10.0.0.1:80', 'sample')), /is not a service name/);
    assert.match(problemOf(parseServiceName('[::1]:80', 'sample')), /is not a service name/);
    assert.match(problemOf(parseServiceName('hello_world', 'sample')), /"hello_world" is not a valid service name/);
    assert.match(problemOf(parseServiceName('helloworld.Bad_NS', 'sample')), /"bad_ns" is not a valid namespace name/);
  });

  it('reads clusterset names, and the per-endpoint names of a headless clusterset service', () => {
    const clusterset = { ...sample, clusterset: true };
    assert.deepEqual(parseServiceName('helloworld.sample.svc.clusterset.local', 'other'), { target: clusterset });
    assert.deepEqual(parseServiceName('HelloWorld.Sample.svc.clusterset.local.:5000', 'other'), { target: { ...clusterset, port: 5000 } });
    assert.deepEqual(parseServiceName('web-0.cluster2.helloworld.sample.svc.clusterset.local:6379', 'x'), {
      target: { ...clusterset, port: 6379, instance: { hostname: 'web-0', cluster: 'cluster2' } },
    });
    assert.match(problemOf(parseServiceName('sample.svc.clusterset.local', 'x')), /not a clusterset name: expected <service>\.<namespace>\.svc\.clusterset\.local/);
    assert.match(problemOf(parseServiceName('a.b.c.d.e.svc.clusterset.local', 'x')), /not a clusterset name/);
    assert.match(problemOf(parseServiceName('web_0.cluster2.helloworld.sample.svc.clusterset.local', 'x')), /"web_0" is not a valid hostname/);
    assert.match(problemOf(parseServiceName('helloworld.sample.svc.other.local', 'x')), /or <service>\.<namespace>\.svc\.clusterset\.local/);
    assert.equal(targetFqdn({ namespace: 'sample', service: 'helloworld', clusterset: true }), 'helloworld.sample.svc.clusterset.local');
    assert.equal(targetFqdn({ namespace: 'sample', service: 'helloworld', clusterset: true, instance: { hostname: 'web-0', cluster: 'c2' } }), 'web-0.c2.helloworld.sample.svc.clusterset.local');
    assert.equal(targetFqdn(sample), 'helloworld.sample.svc.cluster.local');
  });

  it('names services in full', () => {
    assert.equal(serviceFqdn('sample', 'helloworld'), 'helloworld.sample.svc.cluster.local');
    assert.equal(serviceFqdn('sample', 'helloworld', 'mesh.example'), 'helloworld.sample.svc.mesh.example');
  });
});

describe('port protocols', () => {
  const protocol = (port: { name?: string; appProtocol?: string; port?: number }, annotations?: Record<string, string>) =>
    portProtocol({ port: 5000, ...port }, annotations);

  it('is HTTP unless something says otherwise', () => {
    assert.equal(protocol({}), 'http');
    assert.equal(protocol({ name: 'web' }), 'http');
    assert.equal(protocol({ name: 'http' }), 'http');
  });

  it('follows appProtocol first', () => {
    assert.equal(protocol({ appProtocol: 'tcp', name: 'http' }), 'tcp');
    assert.equal(protocol({ appProtocol: 'kubernetes.io/h2c', name: 'tcp-db' }), 'http');
    assert.equal(protocol({ appProtocol: 'grpc' }), 'http');
    assert.equal(protocol({ appProtocol: 'https' }), 'tcp', 'TLS from the app is opaque to the proxy');
    assert.equal(protocol({ appProtocol: 'kubernetes.io/wss' }), 'tcp');
    assert.equal(protocol({ appProtocol: 'postgresql' }), 'tcp', 'any other declared protocol is not HTTP');
  });

  it('then Istio’s port-name convention', () => {
    assert.equal(protocol({ name: 'tcp-db' }), 'tcp');
    assert.equal(protocol({ name: 'redis' }), 'tcp');
    assert.equal(protocol({ name: 'mysql-primary' }), 'tcp');
    assert.equal(protocol({ name: 'grpc-api' }), 'http');
    assert.equal(protocol({ name: 'http2' }), 'http');
    assert.equal(protocol({ name: 'tcpish' }), 'http', 'only a whole prefix counts');
  });

  it('then Linkerd’s opaque ports, annotated or by default', () => {
    assert.equal(protocol({ port: 4000 }, { 'config.linkerd.io/opaque-ports': '25, 3900-4100' }), 'tcp');
    assert.equal(protocol({ port: 5000 }, { 'config.linkerd.io/opaque-ports': '25,3900-4100,oops' }), 'http');
    assert.equal(protocol({ port: 6379 }), 'tcp');
    assert.equal(protocol({ port: 3306, name: 'db' }), 'tcp');
    assert.equal(protocol({ port: 6379, name: 'http' }), 'http', 'a name that says HTTP wins over the default');
  });
});

function problemOf(parsed: ReturnType<typeof parseServiceName>): string {
  assert.ok('problem' in parsed, `expected a problem, got ${JSON.stringify(parsed)}`);
  return parsed.problem;
}
