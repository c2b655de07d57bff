// Public API of @rockit/client: the launcher side of ROCKIT Edge (install, resume, FastStart, update, verify,
// repair, status). Talks HTTP only; imports the engine only.
export { ClientError, type ClientErrorCode } from './errors.js';
export type { ClientEvent, ClientPhase, EventSink } from './events.js';
export { install, openInstall, runInstall, Installation, DEFAULT_MEASURE_MS, type InstallOptions, type InstallResult, type SetupTimeline } from './install.js';
export { update, type UpdateOptions, type UpdateResult } from './update.js';
export { verify, type VerifyOptions, type VerifyResult } from './verify.js';
export { status, type InstallStatus } from './status.js';
export { preloadBytes, DEFAULT_PRELOAD_MARGIN } from './preload.js';
export { parseRate, RateLimiter } from './rate-limiter.js';
export { parseRelease, Remote, type Release } from './remote.js';
export { STATE_DIR, readState, type InstallState, type BuildRef } from './state.js';
export type { FileProblem } from './layout.js';
export { play, type PlayOptions, type PlayResult } from './play.js';
export { mountInstall, type Mount } from './fuse-mount.js';
