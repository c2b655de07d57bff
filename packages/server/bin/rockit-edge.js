#!/usr/bin/env node
// The `rockit-edge` server as npm links it (node_modules/.bin/rockit-edge). Committed plain JavaScript, so
// `npm ci` on a fresh clone links it even though dist/ is built later: it runs the compiled server,
// or says how to build it.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const compiled = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write('rockit-edge: the server is not built yet (packages/server/dist is missing): run `npm run build` first\n');
  process.exit(1);
}
await import(compiled.href);
