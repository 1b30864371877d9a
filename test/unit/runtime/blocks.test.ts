// Address blocks claimed machine-wide: real processes reserving at once, stopped state directories
// keeping theirs, removed ones giving them back. Each test has its own temp directory (TMPDIR) for
// the claims, so the machine's running meshes are neither seen nor touched.
import { it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const BLOCKS = new URL('../../../src/runtime/blocks.ts', import.meta.url).href;

/** Runs `body` (with reserveBlock, claimBlock and claimedBlocks in scope) in a new process whose temp directory is `tmp`; its stdout. */
async function inProcess(tmp: string, body: string): Promise<string> {
  const script = `import { reserveBlock, claimBlock, claimedBlocks } from ${JSON.stringify(BLOCKS)};\n${body}`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: tmp } });
  return stdout.trim();
}

/** A temp directory for the claims, removed when the test ends, and a way to make state directories in it. */
function setup(t: TestContext) {
  const tmp = mkdtempSync(join(tmpdir(), 'strait-blocks-'));
  /** A state directory whose mesh.json lists `clusters` (name → block). */
  const home = (name: string, clusters: Record<string, number>) => {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'mesh.json'), JSON.stringify({ trustDomain: 'cluster.local', clusters: Object.entries(clusters).map(([n, index]) => ({ name: n, index, createdAt: '' })) }));
    return dir;
  };
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  return { tmp, home };
}

it('processes reserving at once in different state directories get different blocks', async (t) => {
  const { tmp } = setup(t);
  // Each does what `strait up` does: reserve, then record the block in its mesh.json.
  const up = (home: string) => `import { mkdirSync, writeFileSync } from 'node:fs';
    const index = reserveBlock(${JSON.stringify(home)}, 'cluster1', new Set());
    mkdirSync(${JSON.stringify(home)});
    writeFileSync(${JSON.stringify(join(home, 'mesh.json'))}, JSON.stringify({ clusters: [{ name: 'cluster1', index }] }));
    console.log(index);`;
  const got = await Promise.all(Array.from({ length: 6 }, (_, i) => inProcess(tmp, up(join(tmp, `home${i}`)))));
  assert.deepEqual(got.map(Number).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
});

it('a stopped cluster keeps its block while its state directory lists it; a removed one gives it back', async (t) => {
  const { tmp, home } = setup(t);
  const stopped = home('stopped', { cluster1: 0 });
  // Its control plane ran and exited: the claim's process is dead, the state directory remains.
  await inProcess(tmp, `claimBlock(0, ${JSON.stringify(stopped)}, 'cluster1');`);
  assert.equal(await inProcess(tmp, `console.log(reserveBlock(${JSON.stringify(join(tmp, 'other'))}, 'cluster1', new Set()));`), '1');
  assert.equal(await inProcess(tmp, 'console.log(claimedBlocks().join(","));'), '0');
  rmSync(stopped, { recursive: true });
  assert.equal(await inProcess(tmp, `console.log(reserveBlock(${JSON.stringify(join(tmp, 'third'))}, 'cluster1', new Set()));`), '0');
});

it('a control plane cannot start in a block another state directory holds, and is told which', async (t) => {
  const { tmp, home } = setup(t);
  const holder = home('holder', { cluster1: 0 });
  await inProcess(tmp, `claimBlock(0, ${JSON.stringify(holder)}, 'cluster1');`);
  const late = home('late', { east: 0 });
  const out = await inProcess(tmp, `try { claimBlock(0, ${JSON.stringify(late)}, 'east'); console.log('claimed'); } catch (err) { console.log(err.message); }`);
  assert.equal(out, `cluster east cannot use 127.20.0.0/16: cluster cluster1 of ${holder} holds it (stopped); free it with: STRAIT_HOME=${holder} strait down, then remove ${holder}`);
  // The holder itself starts there again.
  assert.equal(await inProcess(tmp, `claimBlock(0, ${JSON.stringify(holder)}, 'cluster1'); console.log('claimed');`), 'claimed');
});
