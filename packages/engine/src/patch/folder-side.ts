// A build given as a plain folder: walk it, cut files into content-defined chunks and serve
// chunk bytes from the files. Used by makePatch for folder inputs and by tests.

import { createHash } from 'node:crypto';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkEntry, ChunkingParams, FileEntry, Manifest } from '../format/types.js';
import { FastCdcChunker } from '../chunker/fastcdc.js';
import { DEFAULT_CHUNKING } from '../format/constants.js';
import { PatchInputError, WrongBaseError } from './errors.js';
import type { BuildSide } from './side.js';
import { walkFolder } from '../tar/folder-walker.js';
import { InputGuard } from '../tar/input-entry.js';

interface Location {
  path: string;
  offset: number;
  size: number;
}

/** Files larger than this are chunked in slices read one at a time (memory stays flat). */
const READ_SLICE_BYTES = 8 << 20;

/**
 * Scans `root` into a manifest exactly as `buildImage` reads a folder (walkFolder order, normalised
 * modes; a second path to an inode already seen becomes a hardlink entry), through the same
 * InputGuard. Chunk payload fields (pack, offset, stored size) are 0/raw: a folder has no packs.
 * Throws PatchInputError when `root` is not a folder, TarError / LimitError when the guard refuses an
 * entry (an absolute symlink, one leaving the root, a device file ...).
 */
export async function openFolderSide(root: string, chunking: ChunkingParams = { ...DEFAULT_CHUNKING }): Promise<BuildSide> {
  const st = await lstat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new PatchInputError(`not a folder: ${root}`);
  const files: FileEntry[] = [];
  const chunks: ChunkEntry[] = [];
  const locations: Location[] = [];
  const byHash = new Map<string, number>();

  // The same entries, rules and refusals as `buildImage` of this folder (one InputGuard for every input):
  // a build that `rockit image build` refuses never becomes one side of a patch that cannot be applied.
  const guard = new InputGuard();
  for await (const entry of walkFolder(root)) {
    const e = guard.admit(entry);
    if (e === undefined) continue;
    if (e.type === 'file') {
      files.push(await chunkFile(join(root, e.path), e.path, e.mode, chunking, chunks, locations, byHash));
    } else {
      files.push({ path: e.path, type: e.type, mode: e.mode, sizeBytes: 0, sha256: new Uint8Array(0), linkTarget: e.linkTarget, chunks: [] });
    }
  }
  guard.finish();
  const manifest: Manifest = { formatVersion: 1, chunking, files, chunks, packs: [] };
  return {
    manifest,
    async readChunk(index) {
      const loc = locations[index];
      const fh = await open(join(root, loc.path), 'r');
      try {
        const buf = Buffer.allocUnsafe(loc.size);
        const { bytesRead } = await fh.read(buf, 0, loc.size, loc.offset);
        const got = createHash('sha256').update(buf.subarray(0, bytesRead)).digest();
        if (bytesRead !== loc.size || !got.equals(chunks[index].hash)) {
          throw new WrongBaseError(loc.path, 'file changed while the patch was being made');
        }
        return buf;
      } finally {
        await fh.close();
      }
    },
    async close() {},
  };
}

async function chunkFile(
  abs: string,
  path: string,
  mode: number,
  chunking: ChunkingParams,
  chunks: ChunkEntry[],
  locations: Location[],
  byHash: Map<string, number>,
): Promise<FileEntry> {
  const fh = await open(abs, 'r');
  const whole = createHash('sha256');
  const list: number[] = [];
  const chunker = new FastCdcChunker(chunking);
  // Bytes of the open chunk from earlier slices (a chunk may straddle two reads).
  let pending: Buffer[] = [];
  let fileOffset = 0;
  let chunkStart = 0;
  const emit = (piece: Buffer) => {
    const hash = createHash('sha256').update(piece).digest();
    const key = hash.toString('hex');
    let idx = byHash.get(key);
    if (idx === undefined) {
      idx = chunks.length;
      byHash.set(key, idx);
      chunks.push({ hash, rawSizeBytes: piece.length, storedSizeBytes: piece.length, codec: 0, pack: 0, offset: 0 });
      locations.push({ path, offset: chunkStart, size: piece.length });
    }
    list.push(idx);
    chunkStart += piece.length;
  };
  try {
    const buf = Buffer.allocUnsafe(READ_SLICE_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, fileOffset);
      if (bytesRead === 0) break;
      const slice = buf.subarray(0, bytesRead);
      whole.update(slice);
      const cuts: number[] = [];
      chunker.update(slice, cuts);
      let start = 0;
      for (const cut of cuts) {
        const part = slice.subarray(start, cut);
        emit(pending.length > 0 ? Buffer.concat([...pending, part]) : part);
        pending = [];
        start = cut;
      }
      if (start < bytesRead) pending.push(Buffer.from(slice.subarray(start)));
      fileOffset += bytesRead;
    }
    const tail = chunker.finish();
    if (tail > 0) emit(Buffer.concat(pending));
  } finally {
    await fh.close();
  }
  return { path, type: 'file', mode, sizeBytes: fileOffset, sha256: whole.digest(), linkTarget: '', chunks: list };
}
