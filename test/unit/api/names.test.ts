// Name rules, quantities, durations and "did you mean".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dns1035LabelError,
  isDns1035Label,
  isDns1123Label,
  isDns1123Subdomain,
  labelValueError,
  portNameError,
  qualifiedNameError,
} from '../../../src/api/names.js';
import { parseDuration, parseQuantity } from '../../../src/api/quantity.js';
import { closest, editDistance } from '../../../src/api/suggest.js';

test('DNS-1123 labels and subdomains, DNS-1035 labels', () => {
  for (const ok of ['a', 'helloworld-v1', '123-abc', 'a'.repeat(63)]) assert.ok(isDns1123Label(ok), ok);
  for (const bad of ['', 'Hello', 'a_b', '-a', 'a-', 'a.b', 'a'.repeat(64)]) assert.ok(!isDns1123Label(bad), bad);
  for (const ok of ['a', 'webapp.booksapp.svc.cluster.local', 'a-1.b-2']) assert.ok(isDns1123Subdomain(ok), ok);
  for (const bad of ['', 'a..b', '.a', 'a.', 'A.b', 'a_b', `${'a'.repeat(63)}.`.repeat(4) + 'a']) assert.ok(!isDns1123Subdomain(bad), bad);
  assert.ok(isDns1035Label('helloworld'));
  assert.ok(!isDns1035Label('1service'), 'a Service name starts with a letter');
  assert.match(dns1035LabelError('My_Service')!, /RFC 1035 label/);
  assert.equal(dns1035LabelError('x'.repeat(64)), 'must be no more than 63 characters');
});

test('label keys and values, port names', () => {
  assert.equal(qualifiedNameError('app'), undefined);
  assert.equal(qualifiedNameError('mirror.linkerd.io/exported'), undefined);
  assert.match(qualifiedNameError('Bad_Prefix/x')!, /^prefix part/);
  assert.match(qualifiedNameError('a/')!, /name part must not be empty/);
  assert.match(qualifiedNameError('bad key')!, /name part/);
  assert.equal(labelValueError(''), undefined);
  assert.equal(labelValueError('v1.2_3-x'), undefined);
  assert.ok(labelValueError('-x'));
  assert.ok(labelValueError('x'.repeat(64)));
  assert.equal(portNameError('http'), undefined);
  assert.equal(portNameError('http-alt'), undefined);
  assert.match(portNameError('a--b')!, /consecutive/);
  assert.match(portNameError('8080')!, /at least one letter/);
  assert.match(portNameError('a-very-long-port-name')!, /15/);
  assert.ok(portNameError('HTTP'));
});

test('quantities: plain numbers, decimal and binary suffixes, exponents', () => {
  const cases: [unknown, number | undefined][] = [
    [50, 50],
    ['50', 50],
    ['500m', 0.5],
    ['1', 1],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1k', 1000],
    ['2M', 2e6],
    ['1Ki', 1024],
    ['1Mi', 1048576],
    ['1e3', 1000],
    ['1E', 1e18],
    ['250u', 0.00025],
    ['-1', -1],
    ['abc', undefined],
    ['5 m', undefined],
    ['1x', undefined],
    ['', undefined],
    [true, undefined],
    [Infinity, undefined],
  ];
  for (const [input, want] of cases) {
    const got = parseQuantity(input);
    if (want === undefined) assert.equal(got, undefined, String(input));
    else assert.ok(got !== undefined && Math.abs(got - want) < 1e-12, `${String(input)} → ${got}, want ${want}`);
  }
});

test('Go durations in milliseconds', () => {
  assert.equal(parseDuration('300ms'), 300);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('500us'), 0.5);
  for (const bad of ['', '10', '3 seconds', '-1s', '10x', 's']) assert.equal(parseDuration(bad), undefined, bad);
});

test('did you mean: typos, swapped letters and prefixes, nothing for unrelated words', () => {
  assert.equal(editDistance('contianers', 'containers'), 1);
  assert.equal(closest('replica', ['replicas', 'selector', 'template']), 'replicas');
  assert.equal(closest('contianers', ['containers', 'volumes']), 'containers');
  assert.equal(closest('Selector', ['selector']), 'selector');
  assert.equal(closest('imagePullPolicyy', ['image', 'imagePullPolicy']), 'imagePullPolicy');
  assert.equal(closest('foo', ['replicas', 'selector']), undefined);
  assert.equal(closest('x', ['ab']), undefined);
});
