// The import pipeline's steps as plain functions (dltar → mkraw → deploy, then the grace cleanup).
// Queue handlers call these; they take every dependency as an argument and read no configuration.
export { StepError, DownloadExitCode, canceledError, isStepError, type FileReadFailed, type StepErrorCode, type TaskError } from './errors.js';
export { assembleTarFromDelta, knownChunkIds, KeptChunks, type AssembleTarOptions, type KeptImage } from './delta.js';
export { obtainTar, type DltarProgress, type ObtainTarOptions, type ObtainedTar } from './dltar.js';
export {
  makeRelease,
  discardBuild,
  engineTarError,
  type MakeReleaseOptions,
  type MakeReleaseResult,
  type MkrawProgress,
  type PreviousBuild,
  type StepWarning,
} from './mkraw.js';
export {
  buildRelease,
  keptBuildIds,
  parseRelease,
  planCleanup,
  releasePath,
  serializeRelease,
  ReleaseFormatError,
  RELEASE_FORMAT,
  RELEASE_FORMAT_VERSION,
  type BuildReleaseInput,
  type CleanupPlan,
  type ReleaseDocument,
  type ReleaseImage,
  type ReleasePatch,
} from './release.js';
export {
  deployRelease,
  readPublishedRelease,
  removeExpired,
  DeployError,
  type DeployOptions,
  type DeployProgress,
  type DeployTarget,
  type DepotSource,
  type RemovalResult,
  type TargetResult,
} from './deploy.js';
export { dxfNameFor, dxfBuildPrefix, patchTargetPrefix } from '../publish/layout.js';
export { sweepWorkFolder, dropImageCache, holdWorkFolder, type LiveApps, type SweepResult } from './work-sweep.js';
