// The mesh's gRPC clients survive a session that fails after it was given up: a server that stalls
// (SIGSTOP) times out the client's PING, the caller aborts and reconnects, and the late 'error' of
// the old session must not end the process.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { h2SessionManager } from '../../../src/api/h2-sessions.js';
import { openssl, tempDir } from '../identity/fixtures.js';

const SERVER = `
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
const dir = process.argv[2];
const server = http2.createSecureServer({ key: readFileSync(dir + '/key.pem'), cert: readFileSync(dir + '/cert.pem') });
server.on('stream', (stream) => { stream.on('error', () => {}); stream.respond({ ':status': 200 }); stream.write('hello'); });
server.on('sessionError', () => {});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

it('a session that errors after its manager aborted it does not crash the process', async (t) => {
  const { dir, remove } = tempDir('strait-h2-');
  t.after(remove);
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'server.mjs'), SERVER);
  const server = fork(join(dir, 'server.mjs'), [dir], { stdio: 'ignore' });
  t.after(() => server.kill('SIGKILL'));
  const [port] = (await once(server, 'message')) as [number];

  const manager = h2SessionManager(`https://127.0.0.1:${port}`, { rejectUnauthorized: false }, { pingIntervalMs: 200, pingTimeoutMs: 150, idleConnectionTimeoutMs: 60_000 });
  const stream = await manager.request('POST', '/watch', {}, {});
  stream.on('data', () => {});
  const failed = once(stream, 'error');
  server.kill('SIGSTOP');
  const [error] = (await failed) as [Error];
  assert.match(error.message, /PING timed out/);
  manager.abort();
  // The old session's own 'error' comes once the stalled peer's socket closes.
  server.kill('SIGCONT');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  server.kill('SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(manager.state(), 'closed');
});
