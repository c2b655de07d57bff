// Paces downloads to a byte rate (--limit-rate): each read waits for its turn, so the average stays at the
// limit with bursts of at most one read.

export class RateLimiter {
  private next = 0;
  constructor(private readonly bytesPerSecond: number | undefined) {}

  /** Counts bytes read without waiting (a priority read goes first; the reads after it wait longer). */
  charge(bytes: number): void {
    if (!this.bytesPerSecond || this.bytesPerSecond <= 0) return;
    this.next = Math.max(performance.now(), this.next) + (bytes / this.bytesPerSecond) * 1000;
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!this.bytesPerSecond || this.bytesPerSecond <= 0) return;
    const now = performance.now();
    const start = Math.max(now, this.next);
    this.next = start + (bytes / this.bytesPerSecond) * 1000;
    const wait = start - now;
    if (wait > 0) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, wait);
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          reject(signal.reason);
        }, { once: true });
      });
    }
  }
}

/** Parses `100Mbit`, `12.5MB`, `800k`, `1048576` (bytes per second; bit units divided by 8). */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(bit|b|B)?(?:\/s|ps)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`not a rate: ${JSON.stringify(text)} (e.g. 100Mbit, 12MB, 800k)`);
  const base = m[3] ? 1024 : 1000;
  const mult = { '': 1, k: base, m: base ** 2, g: base ** 3, t: base ** 4 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bits = m[4] !== undefined && m[4].toLowerCase() === 'bit';
  const v = (Number(m[1]) * mult) / (bits ? 8 : 1);
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`not a positive rate: ${text}`);
  return Math.floor(v);
}
