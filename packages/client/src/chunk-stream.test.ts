import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, FILE_READ_AHEAD_BYTES, FolderImageSource, openImage, URGENT_GROUP_BYTES, type Manifest } from '@rockit/engine';
import { ChunkStream } from './chunk-stream.js';
import { layOutFiles } from './layout.js';
import { RateLimiter } from './rate-limiter.js';

// Two incompressible files: the stream (1 MB/s) is busy with a.bin for 8 s, so whatever of z.bin is present
// before a.bin is complete came from a priority read or its read-ahead.
describe('ChunkStream priority reads', () => {
  let root: string;
  let image: string;
  let manifest: Manifest;
  const A = 8 * 1024 * 1024;
  const Z = 8 * 1024 * 1024;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rockit-chunk-stream-'));
    await mkdir(join(root, 'build'));
    await writeFile(join(root, 'build', 'a.bin'), randomBytes(A));
    await writeFile(join(root, 'build', 'z.bin'), randomBytes(Z));
    image = join(root, 'image');
    await buildImage({ input: join(root, 'build'), outDir: image, threads: 0 });
    const source = new FolderImageSource(image);
    manifest = (await openImage(source)).manifest;
    await source.close();
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function session(fileReadAheadBytes: number | undefined, play: (s: ChunkStream) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(root, 'install-'));
    await layOutFiles(dir, manifest);
    const source = new FolderImageSource(image);
    const s = new ChunkStream({
      dir,
      manifest,
      source,
      present: new Uint8Array(Math.ceil(manifest.chunks.length / 8)),
      save: async () => undefined,
      parallelReads: 1,
      limiter: new RateLimiter(1_000_000),
      fileReadAheadBytes,
    });
    const running = s.run();
    try {
      await play(s);
    } finally {
      s.stop();
      await running.catch(() => undefined);
      await source.close();
    }
  }

  const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
    for (const end = Date.now() + ms; Date.now() < end; ) {
      if (cond()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return cond();
  };

  it('a miss also fetches the next FILE_READ_AHEAD_BYTES of the file, and no more', async () => {
    await session(undefined, async (s) => {
      await s.ensure('z.bin', 0, 4096);
      expect(s.has('z.bin', 0, 4096)).toBe(true);
      // Raw = stored here (random bytes), less the last partial chunk of the read-ahead.
      const ahead = FILE_READ_AHEAD_BYTES - 256 * 1024;
      expect(await until(() => s.has('z.bin', 4096, ahead), 6000)).toBe(true);
      expect(s.has('a.bin', 0, A)).toBe(false);
      // Beyond the read-ahead (and the priority read's stream-order group after its last chunk): still missing.
      expect(s.has('z.bin', FILE_READ_AHEAD_BYTES + URGENT_GROUP_BYTES + 512 * 1024, 1)).toBe(false);
    });
  }, 30_000);

  it('fileReadAheadBytes 0 fetches only what was asked and its small stream-order group', async () => {
    await session(0, async (s) => {
      await s.ensure('z.bin', 0, 4096);
      await new Promise((r) => setTimeout(r, 1500));
      expect(s.has('z.bin', URGENT_GROUP_BYTES + 512 * 1024, 1)).toBe(false);
      expect(s.has('a.bin', 0, A)).toBe(false);
    });
  }, 30_000);
});
