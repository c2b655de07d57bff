// Load profiles (spec/engine.md §3): need(t) = stream bytes that must be present t ms after play starts, and
// the preload P(b) = max over t of (need(t) − b·t) + margin(b).
import type { LoadProfile } from '../format/types.js';

export type ProfilePoint = { tMs: number; needBytes: number };

/** P(b) without margin for a need curve given as step points (need holds from tMs on). */
export function curvePreloadBytes(points: readonly ProfilePoint[], bytesPerSecond: number): number {
  let p = 0;
  for (const pt of points) {
    const v = pt.needBytes - (bytesPerSecond * pt.tMs) / 1000;
    if (v > p) p = v;
  }
  return p;
}

/** The profile's margin for a bandwidth: log-linear interpolation between table entries, nearest outside. */
export function marginBytes(profile: LoadProfile, bytesPerSecond: number): number {
  const m = profile.margins ?? [];
  if (m.length === 0) return 0;
  if (bytesPerSecond <= m[0].bytesPerSecond) return m[0].marginBytes;
  const last = m[m.length - 1];
  if (bytesPerSecond >= last.bytesPerSecond) return last.marginBytes;
  let i = 1;
  while (m[i].bytesPerSecond < bytesPerSecond) i++;
  const a = m[i - 1];
  const b = m[i];
  const f = Math.log(bytesPerSecond / a.bytesPerSecond) / Math.log(b.bytesPerSecond / a.bytesPerSecond);
  return a.marginBytes + f * (b.marginBytes - a.marginBytes);
}

/**
 * The preload for a download bandwidth: P(b) = max over the profile's points of (needBytes − b·tMs/1000),
 * at least 0, plus the profile's margin for b; rounded up to whole bytes. The launcher starts the game once
 * this many stream bytes are present. Throws RangeError for a bandwidth that is not a finite number > 0.
 */
export function preloadBytes(profile: LoadProfile, bytesPerSecond: number): number {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) throw new RangeError('bytesPerSecond must be a finite number > 0');
  return Math.ceil(curvePreloadBytes(profile.points, bytesPerSecond) + marginBytes(profile, bytesPerSecond));
}

/**
 * One session's need curve under a stream order: for each first access (time order), the stream end of the
 * furthest chunk needed so far; only increases are kept. `streamEnd[pos]` = stored bytes through position pos.
 */
export function sessionNeedCurve(chunks: Int32Array, firstMs: Float64Array, position: Int32Array, streamEnd: Float64Array): ProfilePoint[] {
  const out: ProfilePoint[] = [];
  let need = 0;
  for (let i = 0; i < chunks.length; i++) {
    const e = streamEnd[position[chunks[i]]];
    if (e > need) {
      need = e;
      const t = firstMs[i];
      if (out.length > 0 && out[out.length - 1].tMs === t) out[out.length - 1].needBytes = need;
      else out.push({ tMs: t, needBytes: need });
    }
  }
  return out;
}

/**
 * The weighted q-quantile over sessions of their need curves, as a step curve (monotone: each session's
 * curve is). A session keeps its last need after it ends.
 */
export function quantileCurve(curves: ReadonlyArray<readonly ProfilePoint[]>, weights: readonly number[], q: number): ProfilePoint[] {
  const n = curves.length;
  if (n === 0) return [];
  const events: Array<{ t: number; s: number; need: number }> = [];
  curves.forEach((c, s) => c.forEach((p) => events.push({ t: p.tMs, s, need: p.needBytes })));
  events.sort((a, b) => a.t - b.t);
  const current = new Float64Array(n);
  // Sessions sorted by current need (ascending); updated by moving one entry per event.
  const sorted = Array.from({ length: n }, (_, i) => i);
  const total = weights.reduce((a, b) => a + b, 0);
  const target = q * total;
  const out: ProfilePoint[] = [];
  const evaluate = (): number => {
    let acc = 0;
    for (const s of sorted) {
      acc += weights[s];
      if (acc >= target - 1e-9) return current[s];
    }
    return current[sorted[n - 1]];
  };
  let i = 0;
  while (i < events.length) {
    const t = events[i].t;
    while (i < events.length && events[i].t === t) {
      const e = events[i++];
      current[e.s] = e.need;
      let k = sorted.indexOf(e.s);
      while (k + 1 < n && current[sorted[k + 1]] < current[sorted[k]]) {
        [sorted[k], sorted[k + 1]] = [sorted[k + 1], sorted[k]];
        k++;
      }
    }
    const v = evaluate();
    if (v > (out.length ? out[out.length - 1].needBytes : 0)) out.push({ tMs: t, needBytes: v });
  }
  return out;
}

/**
 * Reduces a step curve to at most `maxPoints` points, never lowering need at any time (a merged run takes
 * its first time and its last need): P(b) can only grow, by at most b × the merged time span. Runs are merged
 * while their span stays within `relTolerance`·t + `absToleranceMs`; the tolerance doubles until it fits.
 */
export function simplifyCurve(points: readonly ProfilePoint[], maxPoints = 1024, relTolerance = 0.01, absToleranceMs = 10): ProfilePoint[] {
  let rel = relTolerance;
  let abs = absToleranceMs;
  for (;;) {
    const out: ProfilePoint[] = [];
    for (const p of points) {
      const last = out[out.length - 1];
      if (last && p.tMs - last.tMs <= rel * last.tMs + abs) last.needBytes = Math.max(last.needBytes, p.needBytes);
      else out.push({ tMs: Math.floor(p.tMs), needBytes: Math.ceil(p.needBytes) });
    }
    for (const p of out) p.needBytes = Math.ceil(p.needBytes);
    if (out.length <= maxPoints) return out;
    rel *= 2;
    abs *= 2;
  }
}
