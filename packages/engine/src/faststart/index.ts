export {
  trainStreamOrder,
  trainImage,
  mapTracesToManifest,
  DEFAULT_MARGIN_BANDWIDTHS,
  type TrainOptions,
  type TrainStats,
  type TrainResult,
  type TrainImageOptions,
  type TrainImageResult,
  type MappedTraces,
} from './train.js';
export { preloadBytes, marginBytes } from './profile.js';
export { simulateSession, setupMs, URGENT_GROUP_BYTES, FILE_READ_AHEAD_BYTES, SETUP_ROUND_TRIPS, type SimulateOptions, type SetupModel, type SessionSimulation, type LaunchOutcome } from './simulate.js';
export { ChunkMap, type UnmappedReason } from './chunk-map.js';
