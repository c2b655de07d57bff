// Every magic number, version and default of the image format, in one place (see docs/FORMATS.md, "Image").
import type { ChunkingParams } from './types.js';

/** Version written into image.json, manifests and packs. Readers refuse newer versions. */
export const IMAGE_FORMAT_VERSION = 1;

/** `format` field of image.json. */
export const IMAGE_JSON_FORMAT = 'rockit-image';
/** Name of the pointer file at the root of an image folder. */
export const IMAGE_JSON_NAME = 'image.json';
/** Largest image.json we accept (it is a few hundred bytes). */
export const IMAGE_JSON_MAX_BYTES = 64 * 1024;

/** Manifest file: 'RKMF'. */
export const MANIFEST_MAGIC = Uint8Array.of(0x52, 0x4b, 0x4d, 0x46);
/** Fixed manifest header: magic(4) version(u16) flags(u16) codec(u8) reserved(3) storedLen(u32) rawLen(u32) sha256(32). */
export const MANIFEST_HEADER_BYTES = 52;
/** Bytes of the header covered by the body hash (everything before the hash itself). */
export const MANIFEST_HASHED_HEADER_BYTES = 20;
export const MANIFEST_FLAG_PROFILE = 1;
/** Manifest flags bit 1: a per-bandwidth margin table follows the load profile (requires bit 0). */
export const MANIFEST_FLAG_PROFILE_MARGIN = 2;
/** Body codec ids in the manifest header. */
export const MANIFEST_BODY_CODEC_ZSTD = 1;
/** zstd level of the manifest body: mostly chunk hashes (incompressible), so 19 bought 0.4 % over 9 at ~10× the CPU. */
export const MANIFEST_ZSTD_LEVEL = 9;
/** Sanity limit on a decoded manifest body (uncompressed). */
export const MANIFEST_MAX_RAW_BYTES = 1024 * 1024 * 1024;
export const MANIFEST_PREFIX = 'manifest-';
export const MANIFEST_SUFFIX = '.rkm';

/** Pack file: 'RKPK' + u16 version + u16 flags. Chunk payloads follow back to back. */
export const PACK_MAGIC = Uint8Array.of(0x52, 0x4b, 0x50, 0x4b);
export const PACK_HEADER_BYTES = 8;
export const PACKS_DIR = 'packs';
export const PACK_SUFFIX = '.rkp';
/** Default pack size target: packs close at the first chunk boundary at or past this size. */
export const DEFAULT_PACK_SIZE_BYTES = 32 * 1024 * 1024;

/** Hex characters of a SHA-256 used in content-addressed names (128 bits). */
export const NAME_HASH_HEX_CHARS = 32;

/** Chunking algorithm ids in the manifest body. */
export const CHUNKING_ALGORITHM_FASTCDC = 1;

export const DEFAULT_CHUNKING: Readonly<ChunkingParams> = Object.freeze({
  algorithm: 'fastcdc',
  minSizeBytes: 16 * 1024,
  avgSizeBytes: 64 * 1024,
  maxSizeBytes: 256 * 1024,
});
/** Accepted chunking parameter bounds (a manifest outside them is refused). */
export const CHUNK_MIN_BOUND_BYTES = 64;
export const CHUNK_MAX_BOUND_BYTES = 64 * 1024 * 1024;
/** Seed of the FastCDC gear table. Changing it changes every chunk boundary: never change it within a format version. */
export const FASTCDC_GEAR_SEED = 0x5eed_cdc1;

export const DEFAULT_ZSTD_LEVEL = 3;
/** A chunk is stored compressed only if that saves at least this fraction of its size ... */
export const MIN_COMPRESSION_SAVING_RATIO = 0.02;
/** ... and at least this many bytes. */
export const MIN_COMPRESSION_SAVING_BYTES = 16;

/** Tar-bomb limits; every call may override them. */
export interface InputLimits {
  maxFiles: number;
  maxPathLength: number;
  maxTotalBytes: number;
}
export const DEFAULT_LIMITS: Readonly<InputLimits> = Object.freeze({
  maxFiles: 2_000_000,
  maxPathLength: 4096,
  maxTotalBytes: 4 * 1024 ** 4,
});

/** Uncompressed bytes handed to a codec worker per task. */
export const CODEC_BATCH_BYTES = 4 * 1024 * 1024;
/** Largest single HTTP/file range read when coalescing adjacent chunks. */
export const MAX_COALESCED_READ_BYTES = 8 * 1024 * 1024;

/** Extraction: staging folder and state file live beside the target folder. */
export const EXTRACT_STAGING_SUFFIX = '.rockit-staging';
export const EXTRACT_STATE_SUFFIX = '.rockit-state.json';
/** Extraction reads adjacent chunks of a pack in runs of at most this many stored bytes, into reused buffers. */
export const EXTRACT_READ_BYTES = 4 * 1024 * 1024;
/** Extraction: reads (each then decoded, verified and written by a codec worker) in flight at once; bounds memory. */
export const EXTRACT_READS_IN_FLIGHT = 6;
/** Save extraction progress after at least this many written bytes. */
export const EXTRACT_STATE_EVERY_BYTES = 64 * 1024 * 1024;

/** Normalised modes: only the executable bit round-trips. */
export const MODE_FILE = 0o644;
export const MODE_EXEC = 0o755;
export const MODE_DIR = 0o755;
export const MODE_SYMLINK = 0o777;
/** Symlink resolution gives up after this many hops (like the kernel's ELOOP). */
export const MAX_SYMLINK_HOPS = 40;
