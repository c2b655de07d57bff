// Every constant of the trace file format, in one place (see docs/FORMATS.md, "## Trace").

/** First four bytes of every trace file: ASCII "RKTR". */
export const TRACE_MAGIC = Uint8Array.of(0x52, 0x4b, 0x54, 0x52);

/** Current trace format version. Decoders accept every version listed in TRACE_SUPPORTED_VERSIONS. */
export const TRACE_FORMAT_VERSION = 1;
export const TRACE_SUPPORTED_VERSIONS: readonly number[] = [1];

/** Fixed prefix: magic(4) version u16 codec u8 flags u8 rawBodyBytes u32 storedBodyBytes u32 sha256(32). */
export const TRACE_PREFIX_BYTES = 48;
/** Bytes of the prefix covered by the checksum (everything before the checksum itself). */
export const TRACE_PREFIX_CHECKED_BYTES = 16;

/** Body codecs. Numeric values are written to disk: never renumber. */
export const TraceCodec = { Raw: 0, Zstd: 1 } as const;
export type TraceCodecId = (typeof TraceCodec)[keyof typeof TraceCodec];

/** zstd level for trace bodies: traces are small, a high level costs little and saves upload bytes. */
export const TRACE_ZSTD_LEVEL = 12;
/** Bodies smaller than this are stored raw (a zstd frame would not pay). */
export const TRACE_MIN_COMPRESS_BYTES = 128;

/** Body header flag bits. */
export const TRACE_FLAG_FIRST_SESSION = 0x01;

/** Magic of a zstd frame (little-endian 0xFD2FB528): a whole trace file may arrive wrapped in one. */
export const ZSTD_FRAME_MAGIC = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd);

/** Default decoder limits; a server may pass tighter ones. */
export const DEFAULT_TRACE_LIMITS = {
  maxFileBytes: 16 * 1024 * 1024,
  maxBodyBytes: 64 * 1024 * 1024,
  maxRecords: 2_000_000,
  maxPaths: 200_000,
  maxPathBytes: 4096,
  maxStringBytes: 256,
  /** Longest session a trace may describe: 7 days in ms. */
  maxDurationMs: 7 * 24 * 3600 * 1000,
} as const;
