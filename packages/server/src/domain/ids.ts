import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

let lastMs = -1;
let lastRand: number[] = [];

/**
 * A ULID-like id: 10 Crockford base-32 characters of milliseconds, then 16 random ones.
 * Monotonic within a process: an id made in the same (or an earlier, if the clock stepped back)
 * millisecond as the previous one increments the previous random part, so ids sort in creation
 * order. Used for task names (`t_…`, which order same-app imports) and API-key ids (`k_…`).
 */
export function sortableId(nowMs: number): string {
  let ms = Math.max(0, Math.floor(nowMs));
  if (ms <= lastMs) {
    ms = lastMs;
    let i = lastRand.length - 1;
    while (i >= 0 && lastRand[i] === 31) lastRand[i--] = 0;
    if (i >= 0) lastRand[i]++;
  } else {
    lastMs = ms;
    lastRand = [...randomBytes(16)].map((b) => b % 32);
    lastRand[0] &= 15; // headroom so increments within one millisecond never overflow
  }
  let time = '';
  for (let i = 0, t = ms; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + lastRand.map((d) => CROCKFORD[d]).join('');
}
