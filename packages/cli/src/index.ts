export { createProgress, formatBytes } from './progress.js';
export type { Progress, ProgressOptions } from './progress.js';
