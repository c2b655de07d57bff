// Every magic number, version and limit of the delta format, in one place (see docs/FORMATS.md, "Delta").

/** Delta file: 'RKDL'. */
export const DELTA_MAGIC = Uint8Array.of(0x52, 0x4b, 0x44, 0x4c);
/** Version written into the header. Readers refuse any other. */
export const DELTA_FORMAT_VERSION = 1;
/**
 * Fixed header: magic(4) version(u16) flags(u16) minSize(u32) avgSize(u32) maxSize(u32) literalCodec(u8)
 * reserved(3, zero) tarSizeBytes(u64): the exact size of the tar the delta assembles to.
 */
export const DELTA_HEADER_BYTES = 32;

/** Record types (one byte each). Written to disk: never renumber. */
export const REC_ENTRY = 0x45; // 'E'
export const REC_REF = 0x52; // 'R'
export const REC_LITERAL = 0x4c; // 'L'
export const REC_TRAILER = 0x5a; // 'Z'

/** Entry types inside an entry record. */
export const ENTRY_FILE = 0;
export const ENTRY_DIR = 1;
export const ENTRY_SYMLINK = 2;

/**
 * Entry record after its type byte: entryType(u8) mode(u32) mtime(u64) size(u64) nameLen(u16) linkLen(u16),
 * then the name and the link target (UTF-8).
 */
export const ENTRY_FIXED_BYTES = 1 + 4 + 8 + 8 + 2 + 2;
/** Reference record after its type byte: sha256(32) rawLen(u32). */
export const REF_BYTES = 32 + 4;
/** Literal record after its type byte: sha256(32) rawLen(u32) codec(u8) storedLen(u32), then the stored bytes. */
export const LITERAL_FIXED_BYTES = 32 + 4 + 1 + 4;
/** Trailer after its type byte: entries(u32) refs(u32) literals(u32) sha256(32) of every byte before the hash. */
export const TRAILER_BYTES = 4 + 4 + 4 + 32;

/** Largest mode and mtime a tar header holds (octal fields). */
export const MAX_MODE = 0o7777;
export const MAX_MTIME = 0o77777777777;

/** zstd level of literal chunks (as the image's default: fast, and chunks are mostly incompressible game data). */
export const DELTA_ZSTD_LEVEL = 3;
/** Raw bytes of looked-up and literal chunks the assembler holds ahead of the tar it emits. */
export const ASSEMBLE_AHEAD_BYTES = 32 * 1024 * 1024;
/** Chunk lookups kept in flight by the assembler. */
export const ASSEMBLE_PARALLEL_LOOKUPS = 16;
/** File reads of the chunk scan. */
export const SCAN_READ_BYTES = 1024 * 1024;
