// Reading PEM: certificates and private keys, with errors that name the file, the block and what
// is wrong (not PEM at all, cut short, bad base64, or a different kind of object than expected).
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../api/errors.js';
import { x509 } from './x509.js';

/** A PKI input was rejected; the message names the file and the reason. */
export class PkiError extends UserError {
  override name = 'PkiError';
}

export interface PemBlock {
  /** The word(s) after BEGIN, e.g. CERTIFICATE, EC PRIVATE KEY. */
  label: string;
  /** 1-based line of the BEGIN line, for messages. */
  line: number;
  /** RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (legacy encrypted keys). */
  headers: string[];
  der: Buffer;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Splits PEM text into blocks; `source` (usually the file name) appears in every error. */
export function pemBlocks(text: string, source: string): PemBlock[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const blocks: PemBlock[] = [];
  let open: { label: string; line: number; headers: string[]; body: string[] } | undefined;
  lines.forEach((line, i) => {
    const begin = BEGIN.exec(line);
    const end = END.exec(line);
    if (begin) {
      if (open) throw truncated(source, open);
      open = { label: begin[1]!, line: i + 1, headers: [], body: [] };
    } else if (end) {
      if (!open) throw new PkiError(`${source}: line ${i + 1} ends a ${end[1]} block that never began`);
      if (end[1] !== open.label) {
        throw new PkiError(`${source}: the ${open.label} block that begins on line ${open.line} ends as ${end[1]} on line ${i + 1}`);
      }
      blocks.push({ label: open.label, line: open.line, headers: open.headers, der: decodeBody(open, source) });
      open = undefined;
    } else if (open && line !== '') {
      if (line.includes(':') && open.body.length === 0) open.headers.push(line);
      else open.body.push(line);
    }
  });
  if (open) throw truncated(source, open);
  if (blocks.length === 0) {
    const binary = text.includes('\u0000') || text.includes('\ufffd');
    throw new PkiError(
      `${source}: not a PEM file (no "-----BEGIN …-----" line)` +
        (binary ? '; it looks binary — if it is DER, convert it with `openssl x509 -inform der -in FILE -out FILE.pem`' : ''),
    );
  }
  return blocks;
}

function truncated(source: string, open: { label: string; line: number }): PkiError {
  return new PkiError(`${source}: truncated PEM: the ${open.label} block that begins on line ${open.line} has no "-----END ${open.label}-----" line`);
}

function decodeBody(open: { label: string; line: number; body: string[] }, source: string): Buffer {
  const body = open.body.join('');
  if (body === '' || !open.body.every((l) => BASE64_LINE.test(l)) || body.length % 4 !== 0) {
    throw new PkiError(`${source}: the ${open.label} block that begins on line ${open.line} is not valid base64 (damaged or cut short)`);
  }
  return Buffer.from(body, 'base64');
}

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new PkiError(`${file}: cannot read: ${why}`);
  }
}

/** "a CERTIFICATE", "an EC PRIVATE KEY". */
export function aPemLabel(label: string): string {
  return `${/^[AEIOU]/.test(label) ? 'an' : 'a'} ${label}`;
}

function nth(i: number): string {
  return `#${i + 1}`;
}

/** Every certificate in PEM text; any other kind of block is an error (a key has no place in a certificate file). */
export function parseCertificates(text: string, source: string): x509.X509Certificate[] {
  const blocks = pemBlocks(text, source);
  return blocks.map((block, i) => {
    if (block.label !== 'CERTIFICATE') {
      const what = blocks.length === 1 ? `holds ${aPemLabel(block.label)}` : `block ${nth(i)} (line ${block.line}) is ${aPemLabel(block.label)}`;
      throw new PkiError(`${source} ${what}, not a CERTIFICATE`);
    }
    try {
      return new x509.X509Certificate(block.der);
    } catch (err) {
      throw new PkiError(`${source}: certificate ${nth(i)} (line ${block.line}) cannot be parsed: ${(err as Error).message}`);
    }
  });
}

export function readCertificates(file: string): x509.X509Certificate[] {
  return parseCertificates(readText(file), file);
}

const KEY_TYPES: Record<string, 'pkcs8' | 'sec1' | 'pkcs1'> = {
  'PRIVATE KEY': 'pkcs8',
  'EC PRIVATE KEY': 'sec1',
  'RSA PRIVATE KEY': 'pkcs1',
};

/** The one unencrypted private key in PEM text (PKCS#8, SEC1 or PKCS#1; `openssl ecparam`'s EC PARAMETERS block is skipped). */
export function parsePrivateKey(text: string, source: string): KeyObject {
  const blocks = pemBlocks(text, source).filter((b) => b.label !== 'EC PARAMETERS');
  const encrypted = blocks.find((b) => b.label === 'ENCRYPTED PRIVATE KEY' || b.headers.some((h) => /ENCRYPTED/.test(h)));
  if (encrypted) {
    throw new PkiError(
      `${source}: the private key is encrypted; Strait needs it unencrypted (step: --no-password --insecure; openssl: -noenc)`,
    );
  }
  const keys = blocks.filter((b) => b.label in KEY_TYPES);
  if (keys.length === 0) {
    throw new PkiError(`${source} holds ${blocks.map((b) => aPemLabel(b.label)).join(', ')}, not a private key`);
  }
  if (keys.length > 1 || blocks.length > 1) {
    throw new PkiError(`${source} holds ${blocks.length} PEM blocks (${blocks.map((b) => b.label).join(', ')}); a key file must hold exactly one private key`);
  }
  const block = keys[0]!;
  try {
    return createPrivateKey({ key: block.der, format: 'der', type: KEY_TYPES[block.label]! });
  } catch (err) {
    throw new PkiError(`${source}: the ${block.label} (line ${block.line}) cannot be parsed: ${(err as Error).message}`);
  }
}

export function readPrivateKey(file: string): KeyObject {
  return parsePrivateKey(readText(file), file);
}

export function certificatesPem(certs: readonly x509.X509Certificate[]): string {
  return certs.map((c) => c.toString('pem')).join('\n') + '\n';
}
