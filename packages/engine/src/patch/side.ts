import type { Manifest } from '../format/types.js';

/** One build as the patch maker sees it: its manifest and verified access to its chunk bytes. */
export interface BuildSide {
  manifest: Manifest;
  /** Raw bytes of chunk `index`, verified against its hash; throws a typed error otherwise. */
  readChunk(index: number): Promise<Buffer>;
  /** Optional bulk read (verified) of many chunks in the given order, faster than readChunk one by one. */
  scanChunks?(indexes: readonly number[]): AsyncIterable<{ index: number; raw: Buffer }>;
  /** Releases temp files and handles. */
  close(): Promise<void>;
}
