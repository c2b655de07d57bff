// Content fingerprints for reference search: a bottom-k min-hash of the 32-byte windows of a
// chunk (gear rolling hash, then a mixer). Two chunks that share most of their windows (an edit,
// an insertion, a shift) share most of their bottom-k values with high probability.

const GEAR = (() => {
  const t = new Uint32Array(256);
  let s = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    // xorshift32: a fixed table, so fingerprints are stable across runs and machines.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    t[i] = s;
  }
  return t;
})();

/** The `k` smallest distinct window values of `data` (fewer when data is shorter than a window). */
export function minHashes(data: Uint8Array, k: number): number[] {
  const best: number[] = [];
  let worst = 0xffffffff;
  let h = 0;
  for (let i = 0; i < data.length; i++) {
    h = ((h << 1) + GEAR[data[i]]) >>> 0;
    if (i < 31) continue;
    let v = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    v = Math.imul(v ^ (v >>> 15), 0x846ca68b);
    v = (v ^ (v >>> 16)) >>> 0;
    if (best.length === k && v >= worst) continue;
    if (best.includes(v)) continue;
    best.push(v);
    if (best.length > k) {
      best.sort((a, b) => a - b);
      best.length = k;
    }
    worst = best.length === k ? Math.max(...best) : 0xffffffff;
  }
  return best.sort((a, b) => a - b);
}
