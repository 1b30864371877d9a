import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendVia,
  endToEndHeaders,
  hasRequestBody,
  requestHead,
  requestTarget,
  responseHasNoBody,
  splitAuthority,
  upgradeRequestHeaders,
  viaEntry,
  viaIncludes,
} from '../../../../src/proxy/transport/headers.js';

describe('hop-by-hop headers', () => {
  it('drops hop-by-hop headers, those Connection names, Host, pseudo-headers and the mesh headers; keeps the rest', () => {
    const headers = endToEndHeaders({
      ':method': 'GET',
      host: 'helloworld:5000',
      connection: 'keep-alive, X-Trace-Hop',
      'x-trace-hop': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic x',
      'proxy-connection': 'keep-alive',
      'strait-target-port': '4191',
      'strait-client-cluster': 'elsewhere',
      'content-type': 'text/plain',
      'set-cookie': ['a=1', 'b=2'],
      trailer: 'x-checksum',
    });
    assert.deepEqual(headers, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], trailer: 'x-checksum' });
  });

  it('keeps TE only as "trailers", which HTTP/2 allows', () => {
    assert.deepEqual(endToEndHeaders({ te: 'gzip, trailers' }), { te: 'trailers' });
    assert.deepEqual(endToEndHeaders({ te: 'gzip' }), {});
  });

  it('keeps what a WebSocket upgrade needs and drops what was meant for the proxy', () => {
    const headers = upgradeRequestHeaders(['Host', 'chat', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Proxy-Authorization', 'x', 'Strait-Target-Port', '1']);
    assert.deepEqual(headers, { host: 'chat', connection: 'Upgrade', upgrade: 'websocket' });
    assert.equal(requestHead('GET', '/ws', headers), 'GET /ws HTTP/1.1\r\nhost: chat\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n');
  });
});

describe('bodies', () => {
  it('knows when an HTTP/1.1 request has a body', () => {
    assert.equal(hasRequestBody({}), false);
    assert.equal(hasRequestBody({ 'content-length': '0' }), false);
    assert.equal(hasRequestBody({ 'content-length': '12' }), true);
    assert.equal(hasRequestBody({ 'transfer-encoding': 'chunked' }), true);
  });

  it('knows which answers never have one', () => {
    assert.equal(responseHasNoBody('HEAD', 200), true);
    assert.equal(responseHasNoBody('GET', 204), true);
    assert.equal(responseHasNoBody('GET', 304), true);
    assert.equal(responseHasNoBody('GET', 200), false);
  });
});

describe('request targets', () => {
  it('reads absolute-form, as clients with http_proxy send it', () => {
    assert.deepEqual(requestTarget('http://helloworld:5000/hello?x=1', undefined), { authority: 'helloworld:5000', path: '/hello?x=1' });
    assert.deepEqual(requestTarget('HTTP://helloworld', undefined), { authority: 'helloworld', path: '/' });
    assert.deepEqual(requestTarget('http://helloworld?x=1', undefined), { authority: 'helloworld', path: '/?x=1' });
    assert.deepEqual(requestTarget('http://user:pw@helloworld:5000/a', undefined), { authority: 'helloworld:5000', path: '/a' });
  });

  it('reads origin-form with a Host header', () => {
    assert.deepEqual(requestTarget('/hello', 'helloworld:5000'), { authority: 'helloworld:5000', path: '/hello' });
    assert.equal(requestTarget('/hello', undefined), undefined);
  });

  it('refuses what it cannot route: https absolute-form, asterisk-form, an empty authority', () => {
    assert.equal(requestTarget('https://helloworld/', undefined), undefined);
    assert.equal(requestTarget('*', 'helloworld'), undefined);
    assert.equal(requestTarget('http:///path', undefined), undefined);
  });

  it('splits authorities, IPv6 included', () => {
    assert.deepEqual(splitAuthority('helloworld:5000'), { host: 'helloworld', port: 5000 });
    assert.deepEqual(splitAuthority('helloworld'), { host: 'helloworld', port: undefined });
    assert.deepEqual(splitAuthority('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(splitAuthority('helloworld:99999'), { host: 'helloworld', port: undefined });
  });
});

describe('loop guard', () => {
  const me = 'sleep-abc.sample.cluster1:4140';

  it('adds this proxy to Via', () => {
    assert.equal(appendVia(undefined, viaEntry(me)), `1.1 ${me} (strait)`);
    assert.equal(appendVia('1.0 fred, 1.1 p.example.net', viaEntry(me)), `1.0 fred, 1.1 p.example.net, 1.1 ${me} (strait)`);
  });

  it('sees a request that already passed this proxy, and only that', () => {
    assert.equal(viaIncludes(`1.1 other:4140 (strait), 1.1 ${me} (strait)`, me), true);
    assert.equal(viaIncludes([`1.1 x`, `1.1 ${me}`], me), true);
    assert.equal(viaIncludes(`1.1 other:4140 (strait)`, me), false);
    assert.equal(viaIncludes(`1.1 x${me}`, me), false);
    assert.equal(viaIncludes(`1.1 proxy (via ${me})`, me), false);
    assert.equal(viaIncludes(undefined, me), false);
  });
});
