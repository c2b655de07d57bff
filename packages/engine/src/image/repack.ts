// Re-sequencing: the same build, its chunks written in a new stream order (trained images, spec §3).
// Payloads are copied as stored (no recompression) after verification.
import { DEFAULT_PACK_SIZE_BYTES } from '../format/constants.js';
import type { LoadProfile, Manifest } from '../format/types.js';
import { ImageWriter } from './image-writer.js';
import { openImageSource, type ImageSource } from './image-source.js';
import { coalesce, openImage, packPath, verifyChunk } from './reader.js';

export interface RepackImageOptions {
  source: string | URL | ImageSource;
  outDir: string;
  /** The new stream order: every chunk index of the source manifest exactly once. */
  order: readonly number[];
  /** Load profile to store in the new manifest (trained images). */
  profile?: LoadProfile;
  packSizeBytes?: number;
}

/**
 * Writes a new image of the same files whose packs hold the chunks in `order` (chunk i of the new manifest is
 * source chunk order[i]). Every payload is verified before it is copied.
 * Errors: RangeError (order is not a permutation), CorruptionError / FormatError (damaged source),
 * EngineError 'output-exists'. On error the partial output is removed.
 */
export async function repackImage(opts: RepackImageOptions): Promise<{ manifest: Manifest; manifestName: string }> {
  const source = typeof opts.source === 'string' || opts.source instanceof URL ? openImageSource(opts.source) : opts.source;
  try {
    const img = await openImage(source);
    const m = img.manifest;
    const newIndex = new Int32Array(m.chunks.length).fill(-1);
    if (opts.order.length !== m.chunks.length) throw new RangeError(`order has ${opts.order.length} entries, the image has ${m.chunks.length} chunks`);
    opts.order.forEach((ci, i) => {
      if (!Number.isInteger(ci) || ci < 0 || ci >= m.chunks.length || newIndex[ci] !== -1) throw new RangeError(`order is not a permutation (entry ${i})`);
      newIndex[ci] = i;
    });
    const writer = await ImageWriter.create(opts.outDir, opts.packSizeBytes ?? DEFAULT_PACK_SIZE_BYTES);
    try {
      for (const g of coalesce(m, opts.order)) {
        const first = m.chunks[g[0]];
        const last = m.chunks[g[g.length - 1]];
        const bytes = await source.readRange(packPath(m, first), first.offset, last.offset + last.storedSizeBytes - first.offset);
        for (const ci of g) {
          const c = m.chunks[ci];
          const stored = bytes.subarray(c.offset - first.offset, c.offset - first.offset + c.storedSizeBytes);
          verifyChunk(m, c, stored);
          await writer.append(c.hash, c.codec, c.rawSizeBytes, stored);
        }
        await writer.flush();
      }
      const files = m.files.map((f) => ({ ...f, chunks: f.chunks.map((ci) => newIndex[ci]) }));
      const { manifest, imageJson } = await writer.finish({ chunking: m.chunking, files, ...(opts.profile ? { profile: opts.profile } : {}) });
      return { manifest, manifestName: imageJson.manifest.name };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } finally {
    await source.close();
  }
}
