// Every number that is written into a patch file lives here (docs/FORMATS.md, "## Patch").
// Changing any of them changes the format: bump the matching version and keep the old reader.

/** The pointer file of a patch folder (JSON). */
export const PATCH_POINTER_NAME = 'patch.json';
export const PATCH_POINTER_FORMAT = 'rockit-patch';
export const PATCH_POINTER_VERSION = 1;

/** Manifest parts (B's manifest as a delta, A's manifest in full): magic "RKPM". */
export const MANIFEST_PART_MAGIC = 0x4d504b52; // 'R','K','P','M' little-endian
export const MANIFEST_PART_VERSION = 1;
/** Data part (runs of new chunks of B): magic "RKPD". */
export const DATA_PART_MAGIC = 0x44504b52; // 'R','K','P','D' little-endian
export const DATA_PART_VERSION = 1;
/** Data part version written when the part holds stream records (version 1 readers reject them). */
export const DATA_PART_VERSION_STREAMS = 2;

/** Part names inside a patch folder. */
export const MANIFEST_PART_NAME = 'manifest.rkpm';
export const BASE_PART_NAME = 'base-manifest.rkpm';
export const DATA_PART_NAME = 'data.rkpd';

/** Manifest part kinds (u8 on disk: never renumber). */
export const enum ManifestPartKind {
  /** zstd frame of the canonical manifest encoding, no dictionary. */
  Full = 0,
  /** zstd frame whose dictionary is the base (A) canonical manifest encoding, as raw content. */
  DeltaFromBase = 1,
}

/** Data record tags (u8 on disk: never renumber). */
export const enum RecordTag {
  End = 0,
  Run = 1,
  /** One zstd frame holding the new bytes of the following stream-codec runs of one B file (version 2). */
  Stream = 2,
}

/** Run payload codecs (u8 on disk: never renumber). */
export const enum RunCodec {
  Raw = 0,
  Zstd = 1,
  /** zstd with the concatenated reference segments of A as a raw-content dictionary. */
  ZstdDelta = 2,
  /** No payload: the run's bytes are the next `rawSize` bytes of the open stream record (version 2). */
  Stream = 3,
}

/** Default cap on the raw bytes of one run (one zstd frame). */
export const DEFAULT_RUN_CAP_BYTES = 4 << 20;
/** Default cap on the reference bytes of one delta run. */
export const DEFAULT_REF_CAP_BYTES = 8 << 20;
/** Hard limits enforced by the reader (a mutated patch must not make the reader allocate without bound). */
export const MAX_RUN_RAW_BYTES = 64 << 20;
export const MAX_REF_BYTES = 64 << 20;
export const MAX_MANIFEST_RAW_BYTES = 1 << 30;
export const MAX_REF_SEGMENTS = 4096;
/** zstd windowLog used for delta frames: must cover reference + run (16 MiB for the defaults). */
export const DEFAULT_WINDOW_LOG = 24;
export const DEFAULT_ZSTD_LEVEL = 19;
/** Min-hash samples kept per chunk for content-similarity reference search. */
export const MINHASH_SAMPLES_PER_CHUNK = 4;
/**
 * File streams (data part version 2): a B file with at least this many new bytes and an A file of the
 * same path is coded as one zstd frame with the whole A file as raw-content dictionary (patch-from
 * semantics, long-distance matching), so matches anywhere in the old file are found.
 */
export const STREAM_MIN_NEW_BYTES = 8 << 20;
/** Largest A file used whole as a stream reference, and largest stream (new bytes); larger ones fall back to runs. */
export const DEFAULT_STREAM_REF_CAP_BYTES = 128 << 20;
export const DEFAULT_STREAM_RAW_CAP_BYTES = 128 << 20;
/** Reader limits for stream records (apply memory is about reference + raw). */
export const MAX_STREAM_RAW_BYTES = 256 << 20;
export const MAX_STREAM_REF_BYTES = 256 << 20;
/** Largest windowLog of a stream frame (1 GiB); the decoder accepts it explicitly. */
export const MAX_STREAM_WINDOW_LOG = 30;
/** zstd hashLog of level 19 for large inputs; a stream reference larger than 2^(this + 3) gets a larger hash table. */
export const STREAM_DEFAULT_HASH_LOG = 22;
/** Largest hashLog for streams (64 MiB of table, covers a 128 MiB reference). Compressor-side only: not in the format. */
export const STREAM_MAX_HASH_LOG = 24;
