// Header handling on the proxy's HTTP path: what crosses a hop and what does not, the headers one
// Strait proxy passes to the next, and the loop guard. Requests travel app → outbound proxy
// (HTTP/1.1) → inbound proxy (HTTP/2 over mTLS) → app (HTTP/1.1); these functions convert between
// the two header shapes without dropping anything end-to-end.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Headers Strait's proxies exchange over HTTP/2. The outbound proxy sets them, the inbound proxy
 * reads and strips them, and an app can never set them (the outbound proxy strips them too).
 */
export const MESH_HEADERS = {
  /** The app port on the server's pod the request is for. */
  targetPort: 'strait-target-port',
  /** The cluster of the client proxy, recorded as `src_cluster` by the server's proxy. */
  clientCluster: 'strait-client-cluster',
} as const;

/** Set on every answer the proxy makes up itself (503 no such service, 502 …), saying why. */
export const PROXY_ERROR_HEADER = 'strait-proxy-error';

/** Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy ones proxies also drop). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Never forwarded as a regular header: HTTP/2 carries `host` as `:authority`, and the mesh headers are Strait's own. */
const NOT_FORWARDED = new Set(['host', MESH_HEADERS.targetPort, MESH_HEADERS.clientCluster]);

/** The extra header names a `Connection` header marks hop-by-hop, lower-cased. */
function connectionListed(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const listed = new Set<string>();
  for (const token of String(connection).split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') listed.add(name);
  }
  return listed;
}

/** Parsed headers with lower-case names, as Node and undici give them (repeated fields joined or as arrays). */
export type HeaderObject = Record<string, string | string[] | undefined>;

/**
 * The end-to-end headers of a message, for the next hop (HTTP/2 or HTTP/1.1): `te: trailers`
 * survives, as HTTP/2 allows; HTTP/2 pseudo-headers, every other hop-by-hop header, anything
 * `Connection` names, `Host` (HTTP/2 carries it as `:authority`) and the mesh headers are dropped.
 */
export function endToEndHeaders(headers: HeaderObject): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionListed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(name)) {
      if (name === 'te' && /(^|,)\s*trailers\s*(;|,|$)/i.test(String(value))) out.te = 'trailers';
      continue;
    }
    if (NOT_FORWARDED.has(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Whether an HTTP/1.1 request carries a body: a non-zero Content-Length or any Transfer-Encoding. */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

/** A status or method whose response never has a body. */
export function responseHasNoBody(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}

/**
 * The `Via` entry a proxy adds (RFC 9110 §7.6.3): `1.1 <received-by> (strait)`. `receivedBy`
 * names this proxy's listener uniquely in the mesh, e.g. `sleep-5f4d.sample.cluster1:4140`.
 */
export function viaEntry(receivedBy: string): string {
  return `1.1 ${receivedBy} (strait)`;
}

/** The Via header with `entry` appended. */
export function appendVia(existing: string | string[] | undefined, entry: string): string {
  if (existing === undefined || existing === '') return entry;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${entry}`;
}

/** Whether a request's Via header shows it already passed the listener `receivedBy` (a loop). */
export function viaIncludes(via: string | string[] | undefined, receivedBy: string): boolean {
  if (via === undefined) return false;
  const text = Array.isArray(via) ? via.join(',') : via;
  if (!text.includes(receivedBy)) return false; // the common case, without splitting
  for (const hop of text.split(',')) {
    // "1.1 host:port (comment)": the second token is received-by.
    const received = hop.trim().split(/\s+/)[1];
    if (received === receivedBy) return true;
  }
  return false;
}

/**
 * Where an HTTP/1.1 request to the forward proxy is going: absolute-form (`GET http://a:5000/x`,
 * as clients using `http_proxy` send) or origin-form with a Host header. Undefined when neither
 * names a target, or the scheme is not plain http (https goes through CONNECT).
 */
export function requestTarget(url: string, host: string | undefined): { authority: string; path: string } | undefined {
  if (url.charCodeAt(0) === 47 /* '/' */) {
    if (host === undefined || host === '') return undefined;
    return { authority: host, path: url };
  }
  if (url.length < 8 || url.slice(0, 7).toLowerCase() !== 'http://') return undefined;
  const slash = url.indexOf('/', 7);
  const query = url.indexOf('?', 7);
  const end = slash === -1 ? (query === -1 ? url.length : query) : query === -1 ? slash : Math.min(slash, query);
  let authority = url.slice(7, end);
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1); // userinfo is not part of the authority
  if (authority === '') return undefined;
  const rest = url.slice(end);
  return { authority, path: rest === '' ? '/' : rest.charCodeAt(0) === 63 /* '?' */ ? `/${rest}` : rest };
}

/** Splits `host[:port]` (IPv6 in brackets); `port` is undefined when absent or not a valid port. */
export function splitAuthority(authority: string): { host: string; port: number | undefined } {
  let host = authority;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    host = authority.slice(1, close === -1 ? undefined : close);
    if (close !== -1 && authority[close + 1] === ':') portText = authority.slice(close + 2);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon !== -1) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    }
  }
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : undefined;
  return { host, port: port !== undefined && port >= 1 && port <= 65535 ? port : undefined };
}

/**
 * The headers of an upgrade request (WebSocket) handed on as bytes to the app: as sent, with
 * `Host`, `Connection` and `Upgrade` kept (the app needs them to switch protocols) and only the
 * proxy-addressed ones and the mesh headers dropped.
 */
export function upgradeRequestHeaders(rawHeaders: readonly string[]): OutgoingHttpHeaders {
  const add = (headers: OutgoingHttpHeaders, name: string, value: string) => {
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [String(existing), value];
  };
  const headers: OutgoingHttpHeaders = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name === 'proxy-connection' || name === 'proxy-authorization' || name === 'keep-alive') continue;
    if (name === MESH_HEADERS.targetPort || name === MESH_HEADERS.clientCluster) continue;
    add(headers, name, rawHeaders[i + 1]!);
  }
  return headers;
}

/** The head of an HTTP/1.1 request as text, for requests the proxy hands on as bytes (upgrades). */
export function requestHead(method: string, path: string, headers: OutgoingHttpHeaders): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${String(v)}\r\n`;
  }
  return head + '\r\n';
}

/** A header value cannot hold control or non-ASCII characters. */
export function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** The body and headers of an answer the proxy makes itself (on either side), saying why. */
export function proxyAnswer(message: string): { body: string; headers: { 'content-type': string; 'content-length': number; [PROXY_ERROR_HEADER]: string } } {
  const body = `${message}\n`;
  return { body, headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), [PROXY_ERROR_HEADER]: headerSafe(message) } };
}
