// ClientHellos for the gateway tests: real ones, recorded from `node:tls` and `openssl s_client`
// by a local TCP server, and hand-built ones whose every field the test chooses.
import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';

/** The first TLS record a client sends, read by its own length field (independently of the parser under test). */
async function recordFirstRecord(startClient: (port: number) => () => void): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let stopClient = () => {};
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the client sent no complete TLS record within 10 s')), 10_000);
      server.once('connection', (socket) => {
        let bytes = Buffer.alloc(0);
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => {
          bytes = Buffer.concat([bytes, chunk]);
          if (bytes.length < 5 || bytes.length < 5 + bytes.readUInt16BE(3)) return;
          clearTimeout(timer);
          socket.destroy();
          resolve(bytes.subarray(0, 5 + bytes.readUInt16BE(3)));
        });
      });
      stopClient = startClient((server.address() as AddressInfo).port);
    });
  } finally {
    stopClient();
    server.close();
  }
}

/** The ClientHello record `node:tls` sends for these options. */
export function nodeClientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  return recordFirstRecord((port) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.on('error', () => {});
    return () => socket.destroy();
  });
}

/** The ClientHello record `openssl s_client` sends with these extra arguments. */
export function opensslClientHello(args: string[]): Promise<Buffer> {
  return recordFirstRecord((port) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => {});
    return () => child.kill();
  });
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function vector16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
}

function vector8(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([body.length]), body]);
}

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vector16(data)]);
}

/** A server_name extension naming `names` (each a host_name entry, given as raw text). */
export function serverNameExtension(...names: string[]): Buffer {
  return extension(0, vector16(...names.map((n) => Buffer.concat([Buffer.from([0]), vector16(Buffer.from(n, 'latin1'))]))));
}

export function alpnExtension(...protocols: string[]): Buffer {
  return extension(16, vector16(...protocols.map((p) => vector8(Buffer.from(p, 'latin1')))));
}

/** RFC 7685 padding, to make a hello as large as a test needs. */
export function paddingExtension(length: number): Buffer {
  return extension(21, Buffer.alloc(length));
}

/** A ClientHello handshake message (header included) carrying `extensions`; `null` leaves out the extensions block. */
export function clientHelloMessage(extensions: Buffer[] | null): Buffer {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    vector8(Buffer.alloc(32, 1)),
    vector16(Buffer.from([0x13, 0x01, 0x13, 0x02])),
    vector8(Buffer.from([0])),
    ...(extensions === null ? [] : [vector16(...extensions)]),
  ]);
  const header = Buffer.from([1, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([header, body]);
}

/** `payload` cut into TLS records of at most `fragment` bytes each. */
export function records(payload: Buffer, fragment = 16_384, contentType = 22): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < payload.length; at += fragment) {
    const piece = payload.subarray(at, at + fragment);
    out.push(Buffer.from([contentType, 3, 1]), u16(piece.length), piece);
  }
  return Buffer.concat(out);
}

/** A whole ClientHello as a client sends it, in one record. */
export function clientHello(extensions: Buffer[] | null): Buffer {
  return records(clientHelloMessage(extensions));
}

/** The handshake message inside a one-record hello (as recorded from a real client). */
export function messageOf(record: Buffer): Buffer {
  return record.subarray(5, 5 + record.readUInt16BE(3));
}
