#!/usr/bin/env node
// The `rockit` command as npm links it (node_modules/.bin/rockit). Committed plain JavaScript, so
// `npm ci` on a fresh clone links it even though dist/ is built later: it runs the compiled CLI, or
// says how to build it. Without this file, `npx rockit` on a fresh clone would ask the public
// registry for a package named "rockit".
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const compiled = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write('rockit: the CLI is not built yet (packages/cli/dist is missing): run `npm run build` first\n');
  process.exit(1);
}
await import(compiled.href);
