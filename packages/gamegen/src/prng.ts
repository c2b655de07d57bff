// Deterministic pseudo-random numbers. Everything gamegen produces derives from these, never from
// Math.random, so one seed always gives the same bytes on every machine (little-endian hosts).

/** Mixes integers into one 32-bit seed (murmur3-style finalisers); order matters. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    let k = Math.imul((p >>> 0) ^ Math.floor(p / 2 ** 32), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a of a string, for seeding by name. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** xoshiro128** seeded through splitmix32. Period 2^128 − 1; not for cryptography. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next 32 random bits as an unsigned integer. */
  u32(): number {
    const r = Math.imul(this.b, 5);
    const result = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive); hi − lo < 2^32. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)];
  }

  /** Log-uniform integer in [lo, hi]: many small values, a few large ones. */
  logInt(lo: number, hi: number): number {
    return Math.min(hi, Math.floor(lo * Math.pow(hi / lo, this.float())));
  }

  /** Fills `out` with random bytes (fast path for noise content). */
  fill(out: Uint8Array): void {
    if (out.byteOffset % 4 !== 0) {
      const tmp = new Uint8Array(out.length);
      this.fill(tmp);
      out.set(tmp);
      return;
    }
    const words = out.length >>> 2;
    const u32 = new Uint32Array(out.buffer, out.byteOffset, words);
    let a = this.a, b = this.b, c = this.c, d = this.d;
    for (let i = 0; i < words; i++) {
      const r = Math.imul(b, 5);
      u32[i] = Math.imul((r << 7) | (r >>> 25), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
    }
    this.a = a; this.b = b; this.c = c; this.d = d;
    for (let i = words * 4; i < out.length; i++) out[i] = this.u32() & 0xff;
  }
}
