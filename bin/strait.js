#!/usr/bin/env node
// The CLI runs from the compiled tree; `npm ci` builds it (the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('strait: the project is not built yet; run `npm ci` (or `npm run build`) in ' + fileURLToPath(new URL('..', import.meta.url)));
  process.exit(1);
}
await import(main.href);
