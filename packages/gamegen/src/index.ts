export { generateSeries, seriesModels } from './generate-series.js';
export type { GenerateSeriesOptions, SeriesDescription, SeriesProgress, SeriesVersion } from './generate-series.js';
export { createBuild, nextVersion, buildBytes, contentBytes } from './build-model.js';
export type { BuildModel, FileModel, FileContent, Asset, SeriesChange } from './build-model.js';
export { readGpakToc } from './archive-format.js';
export type { GpakTocEntry } from './archive-format.js';
export { Rng, mixSeed, hashString } from './prng.js';
export { generateSessions } from './generate-sessions.js';
export type { GenerateSessionsOptions, SessionsDescription, SessionSummary } from './generate-sessions.js';
