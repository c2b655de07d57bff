/** Time source, injected everywhere expiry or scheduling matters so tests can move time. */
export interface Clock {
  /** Milliseconds since the UNIX epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** UNIX seconds of a millisecond timestamp, as the API reports times. */
export const toUnixSeconds = (ms: number): number => Math.floor(ms / 1000);
