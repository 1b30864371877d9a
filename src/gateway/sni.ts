// Reading a TLS ClientHello without taking part in the handshake: the gateway buffers the bytes a
// client sends first, finds the server name (SNI) and ALPN in them, and later replays exactly those
// bytes to wherever the name routes. The parser is a pure function of the bytes received so far,
// so a hello split over any number of TCP segments or TLS records reads the same; readClientHello
// feeds it from a socket, with a time limit.
//
// Formats: TLS record layer (RFC 8446 §5.1), ClientHello (RFC 8446 §4.1.2, same wire shape in
// TLS 1.0–1.2), server_name (RFC 6066 §3), application_layer_protocol_negotiation (RFC 7301).
import type { Socket } from 'node:net';

/** TLS forbids plaintext records longer than 2^14 bytes (a longer one is a record_overflow). */
const MAX_RECORD_LENGTH = 16_384;
const RECORD_HEADER_LENGTH = 5;
const HANDSHAKE_HEADER_LENGTH = 4;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const EXTENSION_ALPN = 16;
const NAME_TYPE_HOST_NAME = 0;

/**
 * The most bytes, record headers included, that a ClientHello may take. Two full records: a hello
 * larger than one record still passes, and a client that never finishes its hello costs at most this.
 */
export const MAX_CLIENT_HELLO_BYTES = 2 * (MAX_RECORD_LENGTH + RECORD_HEADER_LENGTH);

export interface ClientHello {
  /** The host name in server_name; '' when the extension is there but names nothing; undefined without it. */
  serverName: string | undefined;
  /** The protocols the client offers (ALPN), in its order of preference. */
  alpn: string[];
}

export type ClientHelloProblem = 'not-tls' | 'malformed' | 'oversize';

export type ClientHelloResult =
  | { status: 'complete'; hello: ClientHello }
  /** More bytes are needed: nothing changes until at least `needed` bytes have arrived. */
  | { status: 'incomplete'; needed: number }
  | { status: 'invalid'; problem: ClientHelloProblem; detail: string };

export type HelloReadProblem = ClientHelloProblem | 'timeout' | 'closed-early';

export type HelloRead =
  /** `received` is every byte read so far: the hello and whatever followed it, to be replayed. */
  | { status: 'complete'; hello: ClientHello; received: Buffer }
  | { status: 'invalid'; problem: HelloReadProblem; detail: string };

/**
 * Reads from `socket` until its ClientHello is complete, invalid, or late. The socket is left
 * paused with no listeners of this function's, and nothing it sent is lost: `received` holds it all.
 * Bytes are parsed only once enough have arrived to change the answer, so a hello trickling in
 * byte by byte costs one parse per record, not one per byte.
 */
export function readClientHello(socket: Socket, options: { timeoutMs: number; maxBytes?: number }): Promise<HelloRead> {
  return new Promise((resolve) => {
    let chunks: Buffer[] = [];
    let size = 0;
    let needed = 1;
    const finish = (result: HelloRead) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onEnd);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < needed) return;
      const received = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      chunks = [received];
      const result = parseClientHello(received, options.maxBytes);
      if (result.status === 'incomplete') needed = result.needed;
      else finish(result.status === 'complete' ? { ...result, received } : result);
    };
    const onEnd = () => finish({ status: 'invalid', problem: 'closed-early', detail: `the client closed after ${size} bytes, before its ClientHello was complete` });
    const onError = (err: Error) =>
      finish({ status: 'invalid', problem: 'closed-early', detail: `the connection failed after ${size} bytes, before its ClientHello was complete: ${err.message}` });
    const timer = setTimeout(
      () => finish({ status: 'invalid', problem: 'timeout', detail: `no complete ClientHello within ${options.timeoutMs} ms (${size} bytes received)` }),
      options.timeoutMs,
    );
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onEnd);
  });
}

/** Reads the ClientHello at the start of `data`, the bytes a client sent first. */
export function parseClientHello(data: Buffer, maxBytes = MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  const fragments: Buffer[] = [];
  let handshakeBytes = 0;
  let messageLength: number | undefined;
  let offset = 0;
  for (;;) {
    const problem = recordHeaderProblem(data, offset);
    if (problem) return problem;
    if (data.length < offset + RECORD_HEADER_LENGTH) return { status: 'incomplete', needed: offset + RECORD_HEADER_LENGTH };
    const length = data.readUInt16BE(offset + 3);
    if (length === 0) return malformed('a handshake record is empty');
    if (length > MAX_RECORD_LENGTH) return malformed(`a record is ${length} bytes long, more than TLS allows (${MAX_RECORD_LENGTH})`);
    const end = offset + RECORD_HEADER_LENGTH + length;
    if (end > maxBytes) return oversize(maxBytes);
    if (data.length < end) return { status: 'incomplete', needed: end };
    fragments.push(data.subarray(offset + RECORD_HEADER_LENGTH, end));
    handshakeBytes += length;
    offset = end;
    if (handshakeBytes < HANDSHAKE_HEADER_LENGTH) continue;
    const handshake = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
    if (messageLength === undefined) {
      if (handshake[0] !== HANDSHAKE_CLIENT_HELLO) return malformed(`the first handshake message is of type ${handshake[0]}, not a ClientHello (1)`);
      messageLength = HANDSHAKE_HEADER_LENGTH + handshake.readUIntBE(1, 3);
      // Each record adds a header, so a message this long cannot arrive within the limit.
      if (messageLength + RECORD_HEADER_LENGTH > maxBytes) return oversize(maxBytes);
    }
    if (handshakeBytes < messageLength) continue;
    try {
      return { status: 'complete', hello: readClientHelloBody(handshake.subarray(HANDSHAKE_HEADER_LENGTH, messageLength)) };
    } catch (err) {
      if (err instanceof Malformed) return malformed(err.message);
      throw err;
    }
  }
}

/** Checks what is there of the record header at `offset`; the first record decides whether this is TLS at all. */
function recordHeaderProblem(data: Buffer, offset: number): ClientHelloResult | undefined {
  const first = offset === 0;
  if (data.length > offset && data[offset] !== CONTENT_TYPE_HANDSHAKE) {
    if (first) return { status: 'invalid', problem: 'not-tls', detail: `the first byte is ${describeByte(data[offset]!)}, not a TLS handshake record (0x16)` };
    return malformed(`a record of content type ${data[offset]} arrived inside the ClientHello`);
  }
  // Record versions are 3.1 (TLS 1.0, what TLS 1.3 clients still write) to 3.4; 3.0 is SSL 3.
  const major = data[offset + 1];
  const minor = data[offset + 2];
  let detail: string | undefined;
  if (major !== undefined && major !== 3) detail = `the record version's major byte is ${major}, not 3 (TLS)`;
  else if (minor !== undefined && minor > 4) detail = `the record version is 3.${minor}, beyond TLS 1.3 (3.4)`;
  if (detail === undefined) return undefined;
  return first ? { status: 'invalid', problem: 'not-tls', detail } : malformed(detail);
}

function describeByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  return byte >= 0x20 && byte < 0x7f ? `${hex} ('${String.fromCharCode(byte)}', plaintext?)` : hex;
}

function malformed(detail: string): ClientHelloResult {
  return { status: 'invalid', problem: 'malformed', detail };
}

function oversize(maxBytes: number): ClientHelloResult {
  return { status: 'invalid', problem: 'oversize', detail: `the ClientHello takes more than ${maxBytes} bytes` };
}

class Malformed extends Error {}

/** A bounds-checked reader over one structure; running past its end means the hello is malformed. */
class Reader {
  private offset = 0;
  constructor(
    private readonly bytes: Buffer,
    private readonly what: string,
  ) {}

  get done(): boolean {
    return this.offset === this.bytes.length;
  }

  remaining(): number {
    return this.bytes.length - this.offset;
  }

  take(length: number, field: string): Buffer {
    if (this.offset + length > this.bytes.length) throw new Malformed(`${this.what}: ${field} runs past the end`);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  uint8(field: string): number {
    return this.take(1, field)[0]!;
  }

  uint16(field: string): number {
    return this.take(2, field).readUInt16BE(0);
  }

  /** A length-prefixed vector, as a reader of its own. */
  vector(lengthBytes: 1 | 2, field: string): Reader {
    const length = lengthBytes === 1 ? this.uint8(`the length of ${field}`) : this.uint16(`the length of ${field}`);
    return new Reader(this.take(length, field), field);
  }

  end(): void {
    if (!this.done) throw new Malformed(`${this.what} has ${this.remaining()} bytes left over`);
  }
}

function readClientHelloBody(body: Buffer): ClientHello {
  const hello = new Reader(body, 'the ClientHello');
  hello.take(2 + 32, 'legacy_version and random');
  if (hello.vector(1, 'legacy_session_id').remaining() > 32) throw new Malformed('legacy_session_id is longer than 32 bytes');
  const suites = hello.vector(2, 'cipher_suites').remaining();
  if (suites === 0 || suites % 2 !== 0) throw new Malformed(`cipher_suites is ${suites} bytes long, not a non-empty list of 2-byte suites`);
  if (hello.vector(1, 'legacy_compression_methods').done) throw new Malformed('legacy_compression_methods is empty');
  const result: ClientHello = { serverName: undefined, alpn: [] };
  // Before TLS 1.3 a hello may end here, with no extensions at all.
  if (hello.done) return result;
  const extensions = hello.vector(2, 'extensions');
  hello.end();
  const seen = new Set<number>();
  while (!extensions.done) {
    const type = extensions.uint16('an extension type');
    const data = extensions.vector(2, `extension ${type}`);
    if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXTENSION_SERVER_NAME) result.serverName = readServerName(data);
    else if (type === EXTENSION_ALPN) result.alpn = readAlpn(data);
  }
  return result;
}

// Host names as sent in SNI: letters, digits, '-', '_' and '.', nothing a log line could be fooled by.
const HOST_NAME = /^[A-Za-z0-9._-]+$/;

function readServerName(data: Reader): string {
  if (data.done) return '';
  const list = data.vector(2, 'server_name_list');
  data.end();
  let hostName: string | undefined;
  while (!list.done) {
    const nameType = list.uint8('a server name type');
    const name = list.vector(2, 'a server name');
    if (nameType !== NAME_TYPE_HOST_NAME) continue;
    if (hostName !== undefined) throw new Malformed('server_name holds more than one host name');
    const bytes = name.take(name.remaining(), 'a host name');
    hostName = bytes.toString('latin1');
    if (hostName !== '' && !HOST_NAME.test(hostName)) throw new Malformed('server_name holds something that is not a host name');
  }
  return hostName ?? '';
}

function readAlpn(data: Reader): string[] {
  const list = data.vector(2, 'protocol_name_list');
  data.end();
  const protocols: string[] = [];
  while (!list.done) {
    const name = list.vector(1, 'a protocol name');
    if (name.done) throw new Malformed('ALPN offers an empty protocol name');
    protocols.push(name.take(name.remaining(), 'a protocol name').toString('latin1'));
  }
  return protocols;
}
