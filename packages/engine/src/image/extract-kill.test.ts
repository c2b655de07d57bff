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

// The child kills itself (SIGKILL) from its progress callback once `killAtBytes` are written: a deterministic point
// of the stream, with the reads after it still being decoded and written by the codec workers. With `needState`,
// it also waits until a saved state names some chunks (state files are written asynchronously, so under load the
// first one past chunk 0 can land after the byte count is reached).
const CHILD = `
import { readFileSync } from 'node:fs';
const [engine, image, out, killAtBytes, needState] = process.argv.slice(2);
const saved = () => {
  try {
    return JSON.parse(readFileSync(out + '.rockit-state.json', 'utf8')).chunksDone;
  } catch {
    return 0;
  }
};
const { extractImage } = await import(engine);
await extractImage({
  source: image,
  outDir: out,
  threads: 2,
  stateEveryBytes: 1,
  onProgress: (p) => {
    if (p.doneBytes >= Number(killAtBytes) && (needState !== '1' || saved() > 0)) process.kill(process.pid, 'SIGKILL');
  },
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

/** Runs the child until it kills itself; returns how it ended and the chunks its saved state says are done. */
async function killAt(out: string, killAtBytes: number, needState: boolean): Promise<{ seen: number; signal: NodeJS.Signals | null }> {
  const args = [child, pathToFileURL(distIndex).href, join(tmp, 'img'), out, String(killAtBytes), needState ? '1' : '0'];
  const p = spawn(process.execPath, args, { stdio: 'ignore' });
  const signal = await new Promise<NodeJS.Signals | null>((r) => p.on('exit', (_code, sig) => r(sig)));
  return { seen: await chunksDone(out + '.rockit-state.json'), signal };
}

describe.skipIf(!existsSync(distIndex))('extraction killed mid-stream', () => {
  it('resumes into the identical tree from every kill point', async () => {
    const expected = await describeTree(src);
    const n = img.manifest.chunks.length;
    const total = img.manifest.files.reduce((sum, f) => sum + (f.type === 'file' ? f.sizeBytes : 0), 0);
    expect(n).toBeGreaterThan(40);
    // First read, a third, two thirds, and after the last chunk (before the staging folder is renamed).
    for (const [i, at] of [1, Math.floor(total / 3), Math.floor((2 * total) / 3), total].entries()) {
      const out = join(tmp, `out-${i}`);
      const { seen, signal } = await killAt(out, at, i >= 2);
      expect(signal).toBe('SIGKILL');
      expect(seen).toBeGreaterThanOrEqual(0); // the state file was written, and names a prefix of the stream
      expect(seen).toBeLessThanOrEqual(n);
      if (i >= 2) expect(seen).toBeGreaterThan(0); // so that the resume below really skips work
      expect(existsSync(out)).toBe(false);
      const r = await extractImage({ source: join(tmp, 'img'), outDir: out });
      expect(r.resumed).toBe(true);
      expect(r.chunksFetched).toBeLessThanOrEqual(n - seen);
      expect(await describeTree(out)).toEqual(expected);
      expect(existsSync(out + '.rockit-state.json')).toBe(false);
      expect(existsSync(out + '.rockit-staging')).toBe(false);
    }
  });
});
