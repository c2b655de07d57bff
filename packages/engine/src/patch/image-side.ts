// Builds given as ROCKIT images (folder or URL) or as tars (imported into a temporary image first).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../image/build.js';
import { openImageSource } from '../image/image-source.js';
import { openImage, packPath, readChunks, verifyChunk } from '../image/reader.js';
import type { ChunkingParams } from '../format/types.js';
import type { BuildSide } from './side.js';

/**
 * Opens an image: A's bytes come from decompressing its chunks (each verified; a damaged image
 * throws the image reader's CorruptionError naming the chunk and pack).
 */
export async function openImageSide(location: string, onClose?: () => Promise<void>): Promise<BuildSide> {
  const source = openImageSource(location);
  try {
    const img = await openImage(source);
    const m = img.manifest;
    return {
      manifest: m,
      async readChunk(index) {
        const c = m.chunks[index];
        return verifyChunk(m, c, await source.readRange(packPath(m, c), c.offset, c.storedSizeBytes));
      },
      scanChunks: (indexes) => readChunks(img, indexes),
      async close() {
        await source.close();
        await onClose?.();
      },
    };
  } catch (err) {
    await source.close();
    await onClose?.();
    throw err;
  }
}

/** Imports a tar (or folder) into a temporary image cut with `chunking`, removed on close. */
export async function openTarSide(input: string, chunking?: ChunkingParams): Promise<BuildSide> {
  const tmp = await mkdtemp(join(tmpdir(), 'rockit-patch-in-'));
  const dir = join(tmp, 'image');
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    await buildImage({
      input,
      outDir: dir,
      zstdLevel: 1,
      chunking: chunking && { minSizeBytes: chunking.minSizeBytes, avgSizeBytes: chunking.avgSizeBytes, maxSizeBytes: chunking.maxSizeBytes },
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return openImageSide(dir, cleanup);
}
