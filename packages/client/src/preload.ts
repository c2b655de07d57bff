// The FastStart preload: how many stream bytes must be present before the game may start so that, downloading
// on at `bytesPerSecond`, it never waits (spec/engine.md §3). The engine evaluates P(b) with the profile's own
// margin table; a profile without one (trained before margins existed) gets DEFAULT_PRELOAD_MARGIN.
import { preloadBytes as enginePreload, type LoadProfile } from '@rockit/engine';

/** Safety margin on P(b) for profiles without a margin table (fraction of P). */
export const DEFAULT_PRELOAD_MARGIN = 0.1;

/**
 * Stream bytes to fetch before *ready to play*. Without a profile (an untrained image) nothing is known about
 * the game's reads: the whole stream. Never more than `streamBytes`.
 */
export function preloadBytes(profile: LoadProfile | undefined, bytesPerSecond: number, streamBytes: number): number {
  if (!profile || profile.points.length === 0) return streamBytes;
  const b = Number.isFinite(bytesPerSecond) && bytesPerSecond > 1 ? bytesPerSecond : 1;
  let p = enginePreload(profile, b);
  if (!profile.margins || profile.margins.length === 0) p = Math.ceil(p * (1 + DEFAULT_PRELOAD_MARGIN));
  return Math.min(streamBytes, p);
}
