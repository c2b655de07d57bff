// Paces downloads to a byte rate (--limit-rate) by modelling the link as one pipe of that rate: each stream read
// reserves the next slot of the pipe (bytes / rate long), may start at the slot's start and has all its bytes at
// the slot's end. A priority read (the game waits for it) takes the pipe at once: the stream pauses for as long
// as the priority bytes take (every slot not yet ended moves back), which is what a launcher does on a real link
// (it stops reading the stream's socket while the urgent bytes arrive). A stream read that gives up its slot
// before it started (its chunks were taken by a priority read) hands the time back to the reads after it.

/** A stream read's place on the link (performance.now() milliseconds); moved by priority reads. */
export interface Slot {
  start: number;
  end: number;
}

export class RateLimiter {
  /** When the last reserved stream slot ends. */
  private next = 0;
  /** When the last priority read's bytes have arrived. */
  private urgentEnd = 0;
  private readonly slots = new Set<Slot>();
  /** Sleepers re-check their deadline when slots move earlier. */
  private readonly sleepers = new Set<() => void>();

  constructor(readonly bytesPerSecond: number | undefined) {}

  get limited(): boolean {
    return this.bytesPerSecond !== undefined && this.bytesPerSecond > 0;
  }

  private ms(bytes: number): number {
    return (bytes / this.bytesPerSecond!) * 1000;
  }

  /** Resolves once performance.now() >= at() (at() may move while waiting). Rejects with the signal's reason. */
  private async until(at: () => number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const wait = at() - performance.now();
      if (wait <= 0) return;
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(t);
          this.sleepers.delete(done);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          done();
          reject(signal!.reason);
        };
        const t = setTimeout(done, wait);
        this.sleepers.add(done);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /**
   * A stream read of `bytes`: reserves the next slot and resolves at its start (undefined without a limit).
   * Aborted through `signal` before its start, the slot is given back (later slots move earlier).
   */
  async begin(bytes: number, signal?: AbortSignal): Promise<Slot | undefined> {
    if (!this.limited) return undefined;
    const start = Math.max(performance.now(), this.next, this.urgentEnd);
    const slot: Slot = { start, end: start + this.ms(bytes) };
    this.next = slot.end;
    this.slots.add(slot);
    try {
      await this.until(() => slot.start, signal);
    } catch (err) {
      this.giveBack(slot);
      throw err;
    }
    return slot;
  }

  /** Resolves when the slot's bytes have all arrived (its end, moved by priority reads meanwhile). */
  async end(slot: Slot | undefined, signal?: AbortSignal): Promise<void> {
    if (!slot) return;
    try {
      await this.until(() => slot.end, signal);
    } finally {
      this.slots.delete(slot);
    }
  }

  /** A stream read that never started: the slots after it move earlier by its length. */
  private giveBack(slot: Slot): void {
    if (!this.slots.delete(slot)) return;
    const d = slot.end - slot.start;
    for (const s of this.slots) {
      if (s.start >= slot.start) {
        s.start -= d;
        s.end -= d;
      }
    }
    if (this.next >= slot.end) this.next -= d;
    for (const wake of [...this.sleepers]) wake();
  }

  /** Reserves a stream slot and waits for its end: for callers that read a whole slot at once. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    await this.end(await this.begin(bytes, signal), signal);
  }

  /**
   * A priority read of `bytes`: its bytes take the link at once (after earlier priority reads) and have arrived
   * after bytes / rate; the stream pauses meanwhile (every slot not yet ended moves back by that long).
   */
  async urgent(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!this.limited) return;
    const now = performance.now();
    const d = this.ms(bytes);
    const start = Math.max(now, this.urgentEnd);
    this.urgentEnd = start + d;
    for (const s of this.slots) {
      if (s.end > now) {
        s.start = Math.max(s.start, now) + d;
        s.end += d;
      }
    }
    this.next = Math.max(this.next, now) + d;
    const end = this.urgentEnd;
    await this.until(() => end, signal);
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
