// The version every component reports; `strait check` compares proxies against the CLI with it.
import { readFileSync } from 'node:fs';

function packageVersion(): string {
  // src/api/version.ts and dist/src/api/version.js both sit two levels below the package root's parent folder.
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'strait' && pkg.version) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return '0.0.0';
}

export const VERSION = packageVersion();
