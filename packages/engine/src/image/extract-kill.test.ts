// Kill points: an extraction killed (SIGKILL, in a child process) at various points of its chunk stream — while
// codec workers may be writing — resumes into the identical tree. The child runs the compiled engine (dist/),
// so these tests need `npx tsc -b` first; without the build they are skipped.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildResult } from './build.js';
import { extractImage } from './extract.js';
import { describeTree, makeTempDir, removeDir, writeRandomTree } from './test-support/random-tree.js';

const distIndex = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

// The child extracts slowly (one read in flight, a pause after each) so that the kill lands mid-stream.
const CHILD = `
const [engine, image, out] = process.argv.slice(2);
const { extractImage } = await import(engine);
const pause = new Int32Array(new SharedArrayBuffer(4));
await extractImage({
  source: image,
  outDir: out,
  threads: 2,
  reads: { parallelReads: 2 },
  stateEveryBytes: 1,
  onProgress: () => Atomics.wait(pause, 0, 0, 30),
});
`;

let tmp: string;
let src: string;
let img: BuildResult;
let child: string;

beforeAll(async () => {
  tmp = await makeTempDir('extract-kill');
  src = join(tmp, 'src');
  await writeRandomTree(src, 4321, { files: 40, maxFileBytes: 400_000 });
  img = await buildImage({ input: src, outDir: join(tmp, 'img'), threads: 0, packSizeBytes: 64 * 1024 });
  child = join(tmp, 'child.mjs');
  await writeFile(child, CHILD);
});
afterAll(async () => {
  await removeDir(tmp);
});

async function chunksDone(statePath: string): Promise<number> {
  try {
    return (JSON.parse(await readFile(statePath, 'utf8')) as { chunksDone: number }).chunksDone;
  } catch {
    return -1;
  }
}

/** Starts the child and SIGKILLs it once its saved state says at least `atLeast` chunks are done. */
async function killAt(out: string, atLeast: number): Promise<{ seen: number; signal: NodeJS.Signals | null }> {
  const p = spawn(process.execPath, [child, pathToFileURL(distIndex).href, join(tmp, 'img'), out], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => p.on('exit', (_code, signal) => r(signal)));
  let seen = -1;
  for (;;) {
    seen = await chunksDone(out + '.rockit-state.json');
    if (seen >= atLeast || p.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  p.kill('SIGKILL');
  return { seen, signal: await exited };
}

describe.skipIf(!existsSync(distIndex))('extraction killed mid-stream', () => {
  it('resumes into the identical tree from every kill point', async () => {
    const expected = await describeTree(src);
    const n = img.manifest.chunks.length;
    expect(n).toBeGreaterThan(40);
    for (const [i, at] of [1, Math.floor(n / 3), Math.floor((2 * n) / 3)].entries()) {
      const out = join(tmp, `out-${i}`);
      const { seen, signal } = await killAt(out, at);
      expect(signal).toBe('SIGKILL'); // killed, not finished
      expect(seen).toBeGreaterThanOrEqual(at); // (a kill after the last chunk, before the rename, is a kill point too)
      expect(existsSync(out)).toBe(false);
      const r = await extractImage({ source: join(tmp, 'img'), outDir: out });
      expect(r.resumed).toBe(true);
      expect(r.chunksFetched).toBeLessThanOrEqual(n - at);
      expect(await describeTree(out)).toEqual(expected);
      expect(existsSync(out + '.rockit-state.json')).toBe(false);
      expect(existsSync(out + '.rockit-staging')).toBe(false);
    }
  });
});
