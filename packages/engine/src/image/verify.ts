// Re-hash a whole image and report the damage as data: which chunks (hash, pack, offset) and which files.
import { CorruptionError, FormatError } from '../errors.js';
import { openImageSource, type ImageSource } from './image-source.js';
import { coalesce, hex, openImage, packPath, verifyChunk, type OpenedImage } from './reader.js';

export interface DamagedChunk {
  /** SHA-256 (hex) the chunk should have. */
  hash: string;
  pack: string;
  offset: number;
  reason: 'pack-missing' | 'pack-truncated' | 'hash-mismatch';
}

export interface VerifyReport {
  ok: boolean;
  /** Set when image.json or the manifest itself is damaged or unreadable (then nothing else could be checked). */
  imageError?: { code: string; message: string };
  chunksChecked: number;
  damagedChunks: DamagedChunk[];
  /** Paths of files (and hard links) whose content uses a damaged chunk. */
  damagedFiles: string[];
  missingPacks: string[];
}

/**
 * Checks every chunk of an image (folder, URL or source). Never throws for damage — it is reported; throws only
 * for programming errors and EngineError 'source-unavailable' (network down).
 */
export async function verifyImage(location: string | URL | ImageSource): Promise<VerifyReport> {
  const source = typeof location === 'string' || location instanceof URL ? openImageSource(location) : location;
  const report: VerifyReport = { ok: true, chunksChecked: 0, damagedChunks: [], damagedFiles: [], missingPacks: [] };
  try {
    let img: OpenedImage;
    try {
      img = await openImage(source);
    } catch (err) {
      if (err instanceof CorruptionError || err instanceof FormatError) {
        report.ok = false;
        report.imageError = { code: err.code, message: err.message };
        return report;
      }
      throw err;
    }
    const m = img.manifest;
    const damaged = new Set<number>();
    const missing = new Set<number>();
    const mark = (ci: number, reason: DamagedChunk['reason']): void => {
      const c = m.chunks[ci];
      damaged.add(ci);
      report.damagedChunks.push({ hash: hex(c.hash), pack: m.packs[c.pack].name, offset: c.offset, reason });
    };
    const all = Array.from({ length: m.chunks.length }, (_, i) => i);
    for (const g of coalesce(m, all)) {
      const first = m.chunks[g[0]];
      if (missing.has(first.pack)) {
        for (const ci of g) mark(ci, 'pack-missing');
        continue;
      }
      const last = m.chunks[g[g.length - 1]];
      let bytes: Uint8Array | undefined;
      try {
        bytes = await source.readRange(packPath(m, first), first.offset, last.offset + last.storedSizeBytes - first.offset);
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        if (err.kind === 'pack-missing') {
          missing.add(first.pack);
          report.missingPacks.push(m.packs[first.pack].name);
          for (const ci of g) mark(ci, 'pack-missing');
          continue;
        }
      }
      for (const ci of g) {
        const c = m.chunks[ci];
        report.chunksChecked++;
        let stored: Uint8Array | undefined;
        if (bytes) stored = bytes.subarray(c.offset - first.offset, c.offset - first.offset + c.storedSizeBytes);
        else {
          try {
            stored = await source.readRange(packPath(m, c), c.offset, c.storedSizeBytes);
          } catch (err) {
            if (!(err instanceof CorruptionError)) throw err;
            mark(ci, 'pack-truncated');
            continue;
          }
        }
        try {
          verifyChunk(m, c, stored);
        } catch (err) {
          if (!(err instanceof CorruptionError)) throw err;
          mark(ci, 'hash-mismatch');
        }
      }
    }
    if (damaged.size > 0) {
      const bad = new Set<string>();
      for (const f of m.files) {
        if (f.type === 'file' && f.chunks.some((ci) => damaged.has(ci))) bad.add(f.path);
      }
      for (const f of m.files) if (f.type === 'hardlink' && bad.has(f.linkTarget)) bad.add(f.path);
      report.damagedFiles = [...bad];
      report.ok = false;
    }
    return report;
  } finally {
    await source.close();
  }
}
