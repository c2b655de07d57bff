// Which zstd levels makePatch spends on a run ("levels chosen by gain"). Level 19 costs about 20 times the time
// of level 9 and gains a few percent of the frame, spread over all runs, so every run is coded at a probe level
// first and again at the requested level only where the gain per unit of time is expected to be high: the
// probe frame is large next to the bytes the high level must index (run + reference) and the run is not
// incompressible. Measured on a Debian kernel pair (linux-image 6.1.0-56 -> 57, 4,400 delta runs, 294 MB new):
// threshold 0.05: +7.0% patch size, 1/8 of the CPU time of level 19 everywhere; 0.02: +4.5%, 1/4; 0.005:
// +0.4%, 2/3. Compressor-side only: any level decodes the same way, so nothing here is part of the format.

import type { LevelPolicy } from './encode-pool.js';

/** Level every run is coded at first (or the requested level when lower). */
export const PROBE_LEVEL = 9;
/**
 * Re-code at the requested level when probe frame / (run + reference) is at least this. 0.005 keeps patches
 * within ~0.4 % of level 19 everywhere (the speed then comes from coding on all cores); 0.02 would make them
 * ~2.3× cheaper to make again but 4.5 % larger, and every player downloads a patch while it is made once.
 */
export const HIGH_MIN_GAIN = 0.005;
/** Probe frame / raw above this: new, incompressible bytes (compressed media, packed executables). */
export const HIGH_MAX_RATIO = 0.9;

/** The policy for a requested level: at or below the probe level, one pass at that level. */
export function levelPolicy(level: number): LevelPolicy {
  if (level <= PROBE_LEVEL) return { probeLevel: level, highLevel: level, highMinGain: 2, highMaxRatio: 0 };
  return { probeLevel: PROBE_LEVEL, highLevel: level, highMinGain: HIGH_MIN_GAIN, highMaxRatio: HIGH_MAX_RATIO };
}
