// Delta push (issue 13 item 4): the client sends only the chunks the server lacks; see docs/FORMATS.md, "Delta".
export { DELTA_MAGIC, DELTA_FORMAT_VERSION } from './constants.js';
export { DeltaError, type DeltaErrorCode } from './errors.js';
export { scanBuild, planChunkIds, writeDelta, makeDelta, type DeltaPlan, type ScannedFile, type ScanOptions, type WriteDeltaResult } from './make.js';
export { readDelta, type DeltaHeader, type DeltaItem } from './read.js';
export { assembleDelta, type ChunkLookup, type AssembleOptions } from './assemble.js';
