import { parseAnyTrace, type Trace, type TraceLimits } from '@rockit/engine';

/**
 * Decodes an uploaded trace (api.md §9.3): the binary trace format of docs/FORMATS.md or the NDJSON
 * interchange form, each plain or wrapped in one zstd frame, recognised by content (the engine's
 * parseAnyTrace; NDJSON records are stably sorted by time). Throws TraceFormatError with the
 * engine's codes for anything malformed or over `limits`.
 */
export function decodeUploadedTrace(bytes: Uint8Array, limits: TraceLimits): Trace {
  return parseAnyTrace(bytes, limits);
}
