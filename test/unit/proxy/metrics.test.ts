import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { LATENCY_BUCKETS_MS, ProxyMetrics } from '../../../src/proxy/metrics.js';

describe('proxy metrics', () => {
  it('exposes request_total, response_total and response_latency_ms with Linkerd’s names, labels and buckets', async () => {
    const metrics = new ProxyMetrics(() => new Date(2_000_000_000_000));
    const labels = { direction: 'inbound', authority: 'helloworld:5000', tls: 'true', client_id: 'spiffe://cluster.local/ns/sample/sa/sleep', src_cluster: 'cluster2', dst_cluster: 'cluster1' } as const;
    const series = metrics.httpSeries(labels);
    assert.equal(metrics.httpSeries({ ...labels }), series, 'one series per label set');
    series.requests += 3;
    series.latency(200, 0.4);
    series.latency(200, 7);
    series.latency(503, 60_000);
    series.response(200, false);
    series.response(200, false);
    series.response(503, true);
    const text = await metrics.text();
    const l = 'direction="inbound",authority="helloworld:5000",tls="true",client_id="spiffe://cluster.local/ns/sample/sa/sleep",src_cluster="cluster2",dst_cluster="cluster1"';
    assert.match(text, new RegExp(`^request_total\\{${l}\\} 3$`, 'm'));
    assert.match(text, new RegExp(`^response_total\\{${l},status_code="200",classification="success"\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^response_total\\{${l},status_code="503",classification="failure"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^response_latency_ms_bucket\\{${l},status_code="200",le="1"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^response_latency_ms_bucket\\{${l},status_code="200",le="10"\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^response_latency_ms_bucket\\{${l},status_code="503",le="50000"\\} 0$`, 'm'));
    assert.match(text, new RegExp(`^response_latency_ms_bucket\\{${l},status_code="503",le="\\+Inf"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^response_latency_ms_sum\\{${l},status_code="200"\\} 7.4$`, 'm'));
    assert.match(text, new RegExp(`^response_latency_ms_count\\{${l},status_code="200"\\} 2$`, 'm'));
    assert.equal((text.match(/^response_latency_ms_bucket\{.*status_code="200"/gm) ?? []).length, LATENCY_BUCKETS_MS.length + 1);
    assert.match(text, /^identity_cert_expiration_timestamp_seconds 2000000000$/m);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
  });

  it('counts connections open and closed, with their bytes, on close', async () => {
    const metrics = new ProxyMetrics(() => undefined);
    const series = metrics.tcpSeries({ direction: 'outbound', peer: 'src', tls: 'no_identity', no_tls_reason: 'loopback' });
    const sockets = [0, 1].map(() => Object.assign(new EventEmitter(), { bytesRead: 10, bytesWritten: 20 }) as unknown as Socket);
    for (const s of sockets) series.track(s);
    let text = await metrics.text();
    const l = 'direction="outbound",peer="src",tls="no_identity",no_tls_reason="loopback"';
    assert.match(text, new RegExp(`^tcp_open_connections\\{${l}\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^tcp_open_total\\{${l}\\} 2$`, 'm'));
    sockets[0]!.emit('close', false);
    sockets[1]!.emit('close', true);
    text = await metrics.text();
    assert.match(text, new RegExp(`^tcp_open_connections\\{${l}\\} 0$`, 'm'));
    assert.match(text, new RegExp(`^tcp_close_total\\{${l},classification="success"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^tcp_close_total\\{${l},classification="failure"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^tcp_read_bytes_total\\{${l}\\} 20$`, 'm'));
    assert.match(text, new RegExp(`^tcp_write_bytes_total\\{${l}\\} 40$`, 'm'));
  });
});
