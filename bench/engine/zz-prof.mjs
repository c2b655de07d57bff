import { createBuild, buildBytes } from '@rockit/gamegen';
let t = Date.now();
const m = createBuild(3, 1e9);
console.log('create', Date.now() - t, 'ms', m.files.length, buildBytes(m));
const kinds = {};
for (const f of m.files) kinds[f.content.type] = (kinds[f.content.type] ?? 0) + 1;
console.log(kinds);
