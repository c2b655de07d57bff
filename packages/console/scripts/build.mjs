// Builds the web console (root `npm run build`, after `tsc -b`): the API types from the server's
// OpenAPI document, a type check, then Vite into dist/. Skipped when dist is newer than every
// source (so `npm start` and `npm test` stay fast); `--force` builds anyway.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(root, '..', '..');
const stamp = path.join(root, 'dist', 'index.html');

function newest(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of fs.readdirSync(p)) {
    if (e === 'schema.d.ts' || e === 'node_modules') continue;
    m = Math.max(m, newest(path.join(p, e)));
  }
  return m;
}

const sources = ['src', 'index.html', 'vite.config.ts', 'scripts', 'package.json', 'tsconfig.json'].map((p) => path.join(root, p));
// The server's route schemas shape the API types.
sources.push(path.join(repo, 'packages', 'server', 'src', 'http'));
const built = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (!process.argv.includes('--force') && built > 0 && built >= Math.max(...sources.map(newest))) {
  console.log('console: up to date (packages/console/dist)');
  process.exit(0);
}

const { generateSchemaTypes } = await import('./openapi.mjs');
await generateSchemaTypes();
const bin = (name) => path.join(repo, 'node_modules', '.bin', name);
execFileSync(bin('tsc'), ['-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
execFileSync(bin('vite'), ['build', '--logLevel', 'warn', '--config', path.join(root, 'vite.config.ts')], { stdio: 'inherit', cwd: root });
console.log('console: built packages/console/dist');
