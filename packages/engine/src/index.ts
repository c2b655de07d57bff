// Public API of @rockit/engine. Everything else is internal.
export * from './format/types.js';
export * from './errors.js';
export * from './trace/index.js';
export * from './patch/index.js';
export type { KeptUserEntries } from './patch/in-place.js';
export {
  IMAGE_FORMAT_VERSION,
  IMAGE_JSON_NAME,
  PACKS_DIR,
  DEFAULT_CHUNKING,
  DEFAULT_ZSTD_LEVEL,
  DEFAULT_PACK_SIZE_BYTES,
  DEFAULT_LIMITS,
  type InputLimits,
} from './format/constants.js';
export { FastCdcChunker, chunkLengths, validateChunkingParams } from './chunker/fastcdc.js';
export { sha256, decodeChunk } from './codec/chunk-codec.js';
export { CodecPool, type CodecPoolOptions } from './codec/codec-pool.js';
export { encodeManifest, decodeManifest } from './format/manifest.js';
export { parseImageJson, type ImageJson } from './format/image-json.js';
export { readTarEntries, detectCompression, type TarCompression } from './tar/tar-reader.js';
export { sniffTar } from './tar/sniff-tar.js';
export { encodeTarHeader, packTar, tarSize, type TarWriteEntry, type TarWriteEntryType } from './tar/tar-writer.js';
export { walkFolder } from './tar/folder-walker.js';
export { InputGuard, type InputEntry, type AdmittedEntry } from './tar/input-entry.js';
export { buildImage, type BuildImageOptions, type BuildResult, type BuildStats, type BuildProgress } from './image/build.js';
export { ImageWriter } from './image/image-writer.js';
export {
  FolderImageSource,
  HttpImageSource,
  openImageSource,
  type ImageSource,
  type HttpImageSourceOptions,
} from './image/image-source.js';
export { httpPost, HttpGetError, type HttpGetResponse } from './image/http-get.js';
export { openImage, readChunks, verifyChunk, coalesce, decodeOnPool, type OpenedImage, type OpenImageOptions, type ReadChunksOptions, type ReadChunk } from './image/reader.js';
export { extractImage, hashFile, type ExtractImageOptions, type ExtractResult, type ExtractProgress } from './image/extract.js';
export { verifyImage, type VerifyReport, type DamagedChunk } from './image/verify.js';
export { repackImage, type RepackImageOptions } from './image/repack.js';
export * from './faststart/index.js';
export * from './delta/index.js';
export { backoffDelayMs, type BackoffPolicy } from './util/backoff.js';
