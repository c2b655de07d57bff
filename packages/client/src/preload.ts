// The FastStart preload: how many stream bytes must be present before the game may start so that, downloading
// on at `bytesPerSecond`, it never waits (spec/engine.md §3): P(b) = max over t of (need(t) − b·t), plus a margin
// for bandwidth variance. One function so that the engine's own evaluation can replace it when it lands.
import type { LoadProfile } from '@rockit/engine';

/** Safety margin on P(b) when the profile carries none (fraction of P). */
export const DEFAULT_PRELOAD_MARGIN = 0.1;

/**
 * Stream bytes to fetch before *ready to play*. Without a profile (an untrained image) nothing is known about
 * the game's reads: the whole stream. Never more than `streamBytes`.
 */
export function preloadBytes(profile: LoadProfile | undefined, bytesPerSecond: number, streamBytes: number, margin = DEFAULT_PRELOAD_MARGIN): number {
  if (!profile || profile.points.length === 0) return streamBytes;
  let p = 0;
  for (const { tMs, needBytes } of profile.points) p = Math.max(p, needBytes - (bytesPerSecond * tMs) / 1000);
  return Math.min(streamBytes, Math.ceil(p * (1 + margin)));
}
