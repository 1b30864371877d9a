// Runs the test suite with node:test. Node 20 takes no globs, so the files are listed here.
// Usage: node scripts/test.mjs [unit|e2e] [name-filter]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const [group, filter] = process.argv.slice(2);
const roots = group === 'unit' ? ['test/unit'] : group === 'e2e' ? ['test/e2e'] : ['test/unit', 'test/e2e'];

function walk(dir) {
  let out = [];
  let entries = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries.sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(walk(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const files = roots.flatMap(walk).filter((f) => !filter || f.includes(filter));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// The Kubernetes tests need the test environment's binaries: build them first (once; the cache
// keeps them), with the build's progress in sight rather than inside a test.
if (files.some((f) => f.includes(join('e2e', 'kube-')))) {
  const build = spawnSync(process.execPath, ['scripts/kube-env.mjs', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, STRAIT_TEST: '1' },
});
process.exit(result.status ?? 1);
