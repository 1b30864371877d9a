import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, readClientHello, type ClientHelloResult, type HelloRead } from '../../../src/gateway/sni.js';
import {
  alpnExtension,
  clientHello,
  clientHelloMessage,
  extension,
  messageOf,
  nodeClientHello,
  opensslClientHello,
  paddingExtension,
  records,
  serverNameExtension,
} from './hellos.js';

const KEY = 'helloworld-v1-7c9f-x2x.sample.cluster1.ep.strait.mesh';

function complete(result: ClientHelloResult) {
  assert.equal(result.status, 'complete', JSON.stringify(result));
  return result.hello;
}

function invalid(result: ClientHelloResult, problem: string, detail?: RegExp): void {
  assert.equal(result.status, 'invalid', JSON.stringify(result));
  assert.equal(result.problem, problem, result.detail);
  if (detail) assert.match(result.detail, detail);
}

/** Feeds `bytes` as a server receives them, one byte more each time, and checks every prefix is only incomplete. */
function assertIncompleteUntilTheEnd(bytes: Buffer): void {
  for (let n = 0; n < bytes.length; n++) {
    const result = parseClientHello(bytes.subarray(0, n));
    assert.equal(result.status, 'incomplete', `after ${n} of ${bytes.length} bytes: ${JSON.stringify(result)}`);
    assert.ok((result as { needed: number }).needed > n);
  }
}

describe('ClientHellos of real clients', () => {
  let node: Buffer;
  let nodeNoSni: Buffer;
  let openssl: Buffer;
  let opensslNoSni: Buffer;
  before(async () => {
    node = await nodeClientHello({ servername: KEY, ALPNProtocols: ['h2', 'strait-tcp'] });
    nodeNoSni = await nodeClientHello({});
    openssl = await opensslClientHello(['-servername', 'probe.cluster1.gw.strait.mesh', '-alpn', 'http/1.1', '-tls1_3']);
    opensslNoSni = await opensslClientHello(['-noservername']);
  });

  test('node:tls: the server name and the ALPN offer', () => {
    assert.deepEqual(complete(parseClientHello(node)), { serverName: KEY, alpn: ['h2', 'strait-tcp'] });
  });

  test('openssl s_client: the server name and the ALPN offer', () => {
    assert.deepEqual(complete(parseClientHello(openssl)), { serverName: 'probe.cluster1.gw.strait.mesh', alpn: ['http/1.1'] });
  });

  test('a client connecting to an IP address sends no SNI', () => {
    assert.equal(complete(parseClientHello(nodeNoSni)).serverName, undefined);
    assert.equal(complete(parseClientHello(opensslNoSni)).serverName, undefined);
  });

  test('every prefix of a hello is incomplete, the whole is complete: any split over TCP segments reads the same', () => {
    assertIncompleteUntilTheEnd(node);
    assertIncompleteUntilTheEnd(openssl);
  });

  test('a hello re-cut into many small TLS records reads the same', () => {
    for (const size of [1, 3, 64, 500]) {
      const fragmented = records(messageOf(node), size);
      assert.deepEqual(complete(parseClientHello(fragmented)), { serverName: KEY, alpn: ['h2', 'strait-tcp'] }, `records of ${size} bytes`);
    }
    assertIncompleteUntilTheEnd(records(messageOf(openssl), 7));
  });

  test('bytes after the hello (early data, the next records) do not change the answer', () => {
    const more = Buffer.concat([node, Buffer.from([23, 3, 3, 0, 3, 1, 2, 3]), Buffer.from('tail')]);
    assert.equal(complete(parseClientHello(more)).serverName, KEY);
  });
});

describe('hand-built ClientHellos', () => {
  test('a hello larger than one record, across two records', () => {
    const message = clientHelloMessage([serverNameExtension(KEY), paddingExtension(20_000)]);
    assert.ok(message.length > 16_384);
    const bytes = records(message);
    assert.equal(complete(parseClientHello(bytes)).serverName, KEY);
    assert.equal(parseClientHello(bytes.subarray(0, 16_389)).status, 'incomplete');
  });

  test('no extensions at all (allowed before TLS 1.3): no SNI', () => {
    assert.deepEqual(complete(parseClientHello(clientHello(null))), { serverName: undefined, alpn: [] });
  });

  test('an empty server_name, or an empty host name in it: the name is empty', () => {
    assert.equal(complete(parseClientHello(clientHello([extension(0, Buffer.alloc(0))]))).serverName, '');
    assert.equal(complete(parseClientHello(clientHello([serverNameExtension('')]))).serverName, '');
  });

  test('an IP address as the server name is read as sent (routing refuses it)', () => {
    assert.equal(complete(parseClientHello(clientHello([serverNameExtension('127.0.0.5')]))).serverName, '127.0.0.5');
  });

  test('a server name of another type than host_name is skipped', () => {
    const otherType = extension(0, Buffer.from([0, 6, 9, 0, 3, 0x61, 0x62, 0x63]));
    assert.equal(complete(parseClientHello(clientHello([otherType]))).serverName, '');
  });

  test('not TLS: plaintext HTTP, garbage, SSLv2, an alert, a wrong version', () => {
    invalid(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'not-tls', /'G', plaintext/);
    invalid(parseClientHello(Buffer.from('G')), 'not-tls');
    invalid(parseClientHello(Buffer.from([0xff, 0xfe, 0x00])), 'not-tls', /0xff/);
    invalid(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])), 'not-tls');
    invalid(parseClientHello(Buffer.from([21, 3, 3, 0, 2, 2, 40])), 'not-tls', /0x15/);
    invalid(parseClientHello(Buffer.from([22, 2])), 'not-tls', /major byte is 2/);
    invalid(parseClientHello(Buffer.from([22, 3, 9])), 'not-tls', /3\.9/);
  });

  test('malformed records: empty, longer than TLS allows, another content type inside the hello', () => {
    invalid(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), 'malformed', /empty/);
    invalid(parseClientHello(Buffer.from([22, 3, 1, 0x40, 0x01])), 'malformed', /16385 bytes/);
    const split = records(clientHelloMessage([serverNameExtension(KEY)]), 20);
    const intruder = Buffer.concat([split.subarray(0, 25), Buffer.from([23, 3, 3, 0, 1, 0])]);
    invalid(parseClientHello(intruder), 'malformed', /content type 23/);
  });

  test('malformed handshakes: not a ClientHello, lengths that run past their end, leftovers, duplicates', () => {
    const serverHello = Buffer.from(clientHelloMessage(null));
    serverHello[0] = 2;
    invalid(parseClientHello(records(serverHello)), 'malformed', /type 2/);
    invalid(parseClientHello(clientHello([Buffer.from([0, 0, 0, 9, 1])])), 'malformed', /runs past the end/);
    invalid(parseClientHello(clientHello([serverNameExtension(KEY), serverNameExtension(KEY)])), 'malformed', /appears twice/);
    invalid(parseClientHello(clientHello([serverNameExtension('a.example', 'b.example')])), 'malformed', /more than one host name/);
    invalid(parseClientHello(clientHello([extension(0, Buffer.concat([serverNameExtension(KEY).subarray(4), Buffer.from([0])]))])), 'malformed', /left over/);
    invalid(parseClientHello(clientHello([alpnExtension('h2', '')])), 'malformed', /empty protocol/);
    invalid(parseClientHello(clientHello([serverNameExtension('evil\r\nname')])), 'malformed', /not a host name/);
    // A message header that declares less than its fields need.
    const short = Buffer.from(clientHelloMessage([serverNameExtension(KEY)]));
    short.writeUIntBE(30, 1, 3);
    invalid(parseClientHello(records(short)), 'malformed', /runs past the end/);
  });

  test('oversize: a record that would end past the limit, a message that declares more than the limit', () => {
    const big = records(clientHelloMessage([paddingExtension(40_000)]));
    invalid(parseClientHello(big.subarray(0, 16_389)), 'oversize', new RegExp(String(MAX_CLIENT_HELLO_BYTES)));
    invalid(parseClientHello(records(clientHelloMessage([serverNameExtension(KEY)])), 100), 'oversize');
    const declared = Buffer.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]);
    invalid(parseClientHello(declared), 'oversize');
  });
});

describe('reading a ClientHello from a socket', () => {
  /** A client sends `first` (then ends, if `end`); the server side reads its hello with `timeoutMs`. */
  async function serverRead(timeoutMs: number, first: Buffer | string, end = false): Promise<{ read: HelloRead; socket: net.Socket; client: net.Socket }> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1', () => (end ? client.end(first) : client.write(first)));
      const socket = await accepted;
      return { read: await readClientHello(socket, { timeoutMs }), socket, client };
    } finally {
      server.close();
    }
  }

  test('everything sent is kept, the hello and what followed; later bytes wait in the paused socket', async () => {
    const sent = Buffer.concat([clientHello([serverNameExtension(KEY)]), Buffer.from('early')]);
    const { read, socket, client } = await serverRead(5000, sent);
    assert.equal(read.status, 'complete');
    assert.equal(read.hello.serverName, KEY);
    assert.deepEqual(read.received, sent);
    assert.equal(socket.isPaused(), true);
    client.end('later');
    const rest: Buffer[] = [];
    socket.on('data', (c: Buffer) => rest.push(c)).resume();
    await new Promise((resolve) => socket.once('end', resolve));
    assert.equal(Buffer.concat(rest).toString(), 'later');
    socket.destroy();
  });

  test('a client that sends part of a hello and then nothing is cut off at the time-out', async () => {
    const { read, socket, client } = await serverRead(50, clientHello([serverNameExtension(KEY)]).subarray(0, 30));
    assert.deepEqual(read, { status: 'invalid', problem: 'timeout', detail: 'no complete ClientHello within 50 ms (30 bytes received)' });
    socket.destroy();
    client.destroy();
  });

  test('a client that closes early, and plaintext', async () => {
    const early = await serverRead(5000, Buffer.from([22, 3, 1]), true);
    assert.equal(early.read.status === 'invalid' && early.read.problem, 'closed-early');
    early.socket.destroy();
    const http = await serverRead(5000, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(http.read.status === 'invalid' && http.read.problem, 'not-tls');
    http.socket.destroy();
    http.client.destroy();
  });
});
