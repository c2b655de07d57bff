// The in-memory model of a ROCKIT image manifest. The byte layout lives in manifest.ts
// (see docs/FORMATS.md); this file is the shared vocabulary of image, patch and trace code.

/** Content-defined chunking parameters, recorded in every manifest. Sizes in bytes. */
export interface ChunkingParams {
  algorithm: 'fastcdc';
  minSizeBytes: number;
  avgSizeBytes: number;
  maxSizeBytes: number;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

/** Chunk payload codecs. Numeric values are written to disk: never renumber. */
export const enum Codec {
  Raw = 0,
  Zstd = 1,
}

/** One entry of the game folder. Paths are relative, '/'-separated, normalised, never '..' or absolute. */
export interface FileEntry {
  path: string;
  type: EntryType;
  /** Unix permission bits (0o755 / 0o644 ...); only the executable bit is guaranteed to round-trip. */
  mode: number;
  /** Regular files: size in bytes; other types: 0. */
  sizeBytes: number;
  /** Regular files: SHA-256 of the whole content (32 bytes); otherwise empty. */
  sha256: Uint8Array;
  /** symlink: the link text; hardlink: the path of the entry it links to. Otherwise ''. */
  linkTarget: string;
  /** Regular files: indexes into Manifest.chunks, in file order (a chunk index may repeat). */
  chunks: number[];
}

/** One distinct chunk (identical chunks are stored once per image). */
export interface ChunkEntry {
  /** SHA-256 of the raw (uncompressed) bytes, 32 bytes: the chunk's name. */
  hash: Uint8Array;
  rawSizeBytes: number;
  storedSizeBytes: number;
  codec: Codec;
  /** Index into Manifest.packs. */
  pack: number;
  /** Byte offset of the stored payload inside its pack. */
  offset: number;
}

export interface PackEntry {
  /** File name inside the image's packs/ folder; content-addressed so a CDN never serves a stale copy. */
  name: string;
  sizeBytes: number;
}

/**
 * Load profile learned from traces (spec/engine.md §3): stream bytes needed by time t after play starts.
 * The preload for bandwidth b is P(b) = max over points of (needBytes − b·tMs/1000), plus the margin for b
 * (see preloadBytes in faststart/).
 */
export interface LoadProfile {
  /** Pairs (t in ms since play start, stream bytes needed by then), tMs ascending, needBytes non-decreasing. */
  points: Array<{ tMs: number; needBytes: number }>;
  /**
   * Safety margin per bandwidth (manifest flags bit 1), bytesPerSecond strictly ascending. Between two
   * entries the margin is interpolated linearly in log(bandwidth); outside, the nearest entry holds.
   * Absent or empty: no margin.
   */
  margins?: Array<{ bytesPerSecond: number; marginBytes: number }>;
}

export interface Manifest {
  formatVersion: number;
  chunking: ChunkingParams;
  files: FileEntry[];
  /** In stream order: chunk i is stored before chunk i+1 (pack, offset ascending). */
  chunks: ChunkEntry[];
  packs: PackEntry[];
  profile?: LoadProfile;
}
