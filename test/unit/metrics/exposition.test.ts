import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { ExpositionError, familyOf, parseExposition, parseValue } from '../../../src/control/metrics/exposition.js';

const plain = (labels: Record<string, string>) => ({ ...labels });

describe('Prometheus text parser', () => {
  it('reads HELP/TYPE lines, free comments, blank lines, labels and values', () => {
    const text = [
      '# HELP request_total Requests the proxy has received.',
      '# TYPE request_total counter',
      '# a free comment',
      '',
      'request_total{direction="inbound",authority="helloworld:5000"} 42',
      'request_total{direction="outbound" , authority = "web:80",} 7 1700000000000',
      '  tcp_open_connections 3',
      '# TYPE tcp_open_connections gauge',
    ].join('\n');
    const { samples, types } = parseExposition(text);
    assert.equal(types.get('request_total'), 'counter');
    assert.equal(types.get('tcp_open_connections'), 'gauge');
    assert.deepEqual(
      samples.map((s) => ({ name: s.name, labels: plain(s.labels), value: s.value, ts: s.timestampMs })),
      [
        { name: 'request_total', labels: { direction: 'inbound', authority: 'helloworld:5000' }, value: 42, ts: undefined },
        { name: 'request_total', labels: { direction: 'outbound', authority: 'web:80' }, value: 7, ts: 1700000000000 },
        { name: 'tcp_open_connections', labels: {}, value: 3, ts: undefined },
      ],
    );
  });

  it('unescapes label values: backslash, double quote, newline; keeps braces and commas inside quotes', () => {
    const { samples } = parseExposition('m{a="x\\\\y",b="say \\"hi\\"",c="1\\n2",d="{,}= "} 1\n');
    assert.deepEqual(plain(samples[0]!.labels), { a: 'x\\y', b: 'say "hi"', c: '1\n2', d: '{,}= ' });
  });

  it('treats __proto__ as an ordinary label name', () => {
    const { samples } = parseExposition('m{__proto__="x"} 1');
    assert.equal(samples[0]!.labels.__proto__, 'x');
    assert.deepEqual(Object.keys(samples[0]!.labels), ['__proto__']);
  });

  it('reads float forms Go accepts: exponents, NaN, +Inf, -Inf', () => {
    assert.equal(parseValue('1.5e3'), 1500);
    assert.equal(parseValue('-0.25'), -0.25);
    assert.equal(parseValue('.5'), 0.5);
    assert.equal(parseValue('+Inf'), Infinity);
    assert.equal(parseValue('-Inf'), -Infinity);
    assert.ok(Number.isNaN(parseValue('NaN')!));
    assert.equal(parseValue('1,5'), undefined);
    assert.equal(parseValue('0x10'), undefined);
  });

  it('reads a histogram and maps its _bucket/_sum/_count series to the family', () => {
    const text = [
      '# TYPE response_latency_ms histogram',
      'response_latency_ms_bucket{le="1"} 2',
      'response_latency_ms_bucket{le="10"} 5',
      'response_latency_ms_bucket{le="+Inf"} 6',
      'response_latency_ms_sum 41.5',
      'response_latency_ms_count 6',
    ].join('\r\n');
    const { samples, types } = parseExposition(text);
    assert.equal(samples.length, 5);
    assert.equal(samples[2]!.labels.le, '+Inf');
    assert.deepEqual(familyOf('response_latency_ms_bucket', types), { family: 'response_latency_ms', type: 'histogram', part: 'bucket' });
    assert.deepEqual(familyOf('response_latency_ms_count', types), { family: 'response_latency_ms', type: 'histogram', part: 'count' });
    assert.deepEqual(familyOf('unknown_total', types), { family: 'unknown_total', type: 'untyped' });
  });

  it('reads what prom-client writes', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'response_total', help: 'h', labelNames: ['authority', 'classification'], registers: [registry] });
    counter.inc({ authority: 'a "quoted"\\name', classification: 'success' }, 3);
    const histogram = new Histogram({ name: 'response_latency_ms', help: 'h', buckets: [1, 10], registers: [registry] });
    histogram.observe(0.5);
    histogram.observe(20);
    const { samples, types } = parseExposition(await registry.metrics());
    assert.equal(types.get('response_latency_ms'), 'histogram');
    const response = samples.find((s) => s.name === 'response_total')!;
    assert.equal(response.labels.authority, 'a "quoted"\\name');
    assert.equal(response.value, 3);
    const inf = samples.find((s) => s.name === 'response_latency_ms_bucket' && s.labels.le === '+Inf')!;
    assert.equal(inf.value, 2);
  });

  it('names the line and the reason for malformed input', () => {
    const cases: [string, RegExp][] = [
      ['ok 1\nbad{a="x} 1', /^line 2: the value of label a is not closed/],
      ['m{a="\\t"} 1', /invalid escape "\\t"/],
      ['m{a=x} 1', /value of label a must be in double quotes/],
      ['m{a="1" b="2"} 1', /expected "," or "}" after the value of label a/],
      ['m{a="1",a="2"} 1', /label a appears twice/],
      ['m', /m has no value/],
      ['m one', /"one" is not a number/],
      ['m 1 2 3', /unexpected "3"/],
      ['m 1 1.5', /timestamp "1.5"/],
      ['1m 1', /expected a metric name/],
      ['m{1a="x"} 1', /expected a label name/],
      ['m{a="1"}1', /unexpected "1" after m/],
      ['# TYPE m countr', /"countr" is not one of counter/],
      ['# TYPE m counter\n# TYPE m gauge', /^line 2: second # TYPE line for m/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseExposition(text),
        (err: unknown) => err instanceof ExpositionError && message.test(err.message),
        `expected ${message} for ${JSON.stringify(text)}`,
      );
    }
  });
});
