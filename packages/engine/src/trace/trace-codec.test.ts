import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { decodeTrace, encodeTrace, summarizeTrace, TraceFormatError } from './index.js';
import type { Trace } from './index.js';

function sampleTrace(n = 500): Trace {
  const paths = ['bin/game', 'data/pak/common.pak', 'data/pak/level01.pak', 'config/settings.ini'];
  const records = [];
  let t = 0;
  let off = 0;
  // Small xorshift so the sample is fixed and varied (offsets jump back and forth, times repeat).
  let s = 12345;
  const next = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
  for (let i = 0; i < n; i++) {
    t += Math.floor(next() * 3) * 7;
    const path = paths[Math.floor(next() * paths.length)];
    off = next() < 0.7 ? off + 65536 : Math.floor(next() * 2 ** 40);
    records.push({ tMs: t, path, offsetBytes: off, lengthBytes: 1 + Math.floor(next() * 1_000_000) });
  }
  return {
    header: {
      orgName: 'acme',
      appName: 'space-game',
      buildId: 3,
      dxfName: 'dxf-0003-a1b2',
      sessionId: 's-0001-ü',
      firstSession: true,
      startTimeUnixSeconds: 1_767_225_600,
    },
    records,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof TraceFormatError) return err.code;
    throw err;
  }
  return undefined;
}

describe('trace encode/decode', () => {
  it('round-trips header and records, compressed and raw', () => {
    const trace = sampleTrace();
    for (const compress of [true, false]) {
      const bytes = encodeTrace(trace, { compress });
      expect(bytes[6]).toBe(compress ? 1 : 0);
      expect(decodeTrace(bytes)).toEqual(trace);
    }
  });

  it('compresses a sequential trace well below 4 bytes a record', () => {
    const records = Array.from({ length: 10_000 }, (_, i) => ({ tMs: i * 2, path: 'data/a.pak', offsetBytes: i * 65536, lengthBytes: 65536 }));
    const bytes = encodeTrace({ header: sampleTrace(0).header, records });
    expect(bytes.length).toBeLessThan(10_000);
  });

  it('sorts records by time, keeping ties in recorded order', () => {
    const trace = sampleTrace(0);
    trace.records = [
      { tMs: 10, path: 'b', offsetBytes: 0, lengthBytes: 1 },
      { tMs: 5, path: 'a', offsetBytes: 0, lengthBytes: 1 },
      { tMs: 10, path: 'c', offsetBytes: 0, lengthBytes: 1 },
    ];
    expect(decodeTrace(encodeTrace(trace)).records.map((r) => r.path)).toEqual(['a', 'b', 'c']);
  });

  it('accepts a whole trace file wrapped in zstd', () => {
    const trace = sampleTrace(50);
    expect(decodeTrace(compress(encodeTrace(trace, { compress: false })))).toEqual(trace);
  });

  it('summarizes', () => {
    const trace = sampleTrace(0);
    trace.records = [
      { tMs: 0, path: 'a', offsetBytes: 0, lengthBytes: 10 },
      { tMs: 40, path: 'b/c', offsetBytes: 5, lengthBytes: 7 },
      { tMs: 90, path: 'a', offsetBytes: 0, lengthBytes: 10 },
    ];
    expect(summarizeTrace(trace)).toEqual({ records: 3, bytesRead: 27, durationMs: 90, paths: 2 });
    expect(summarizeTrace(decodeTrace(encodeTrace(trace)))).toEqual({ records: 3, bytesRead: 27, durationMs: 90, paths: 2 });
  });

  it('refuses invalid traces on encode', () => {
    const bad = (patch: Partial<Trace['records'][number]>) => {
      const t = sampleTrace(1);
      Object.assign(t.records[0], patch);
      return codeOf(() => encodeTrace(t));
    };
    expect(bad({ path: '../etc/passwd' })).toBe('trace-invalid');
    expect(bad({ path: '/abs' })).toBe('trace-invalid');
    expect(bad({ path: 'a//b' })).toBe('trace-invalid');
    expect(bad({ lengthBytes: 0 })).toBe('trace-invalid');
    expect(bad({ offsetBytes: -1 })).toBe('trace-invalid');
    expect(bad({ tMs: 1.5 })).toBe('trace-invalid');
  });
});

describe('trace decoder robustness', () => {
  it('names each kind of damage', () => {
    const good = encodeTrace(sampleTrace());
    expect(codeOf(() => decodeTrace(good.subarray(0, 2)))).toBe('trace-truncated');
    expect(codeOf(() => decodeTrace(good.subarray(0, 30)))).toBe('trace-truncated');
    expect(codeOf(() => decodeTrace(good.subarray(0, good.length - 1)))).toBe('trace-truncated');
    const withTail = new Uint8Array(good.length + 1);
    withTail.set(good);
    expect(codeOf(() => decodeTrace(withTail))).toBe('trace-invalid');
    const mutate = (i: number, v: number) => {
      const b = good.slice();
      b[i] = v;
      return codeOf(() => decodeTrace(b));
    };
    expect(mutate(0, 0x41)).toBe('trace-bad-magic');
    expect(mutate(4, 9)).toBe('trace-unsupported-version');
    expect(mutate(6, 7)).toBe('trace-bad-codec');
    expect(mutate(20, good[20] ^ 1)).toBe('trace-checksum-mismatch');
  });

  it('enforces limits', () => {
    const trace = sampleTrace(100);
    const bytes = encodeTrace(trace);
    expect(codeOf(() => decodeTrace(bytes, { maxRecords: 99 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTrace(bytes, { maxPaths: 2 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTrace(bytes, { maxFileBytes: bytes.length - 1 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTrace(bytes, { maxBodyBytes: 100 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTrace(bytes, { maxStringBytes: 4 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTrace(bytes, { maxPathBytes: 5 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTrace(bytes, { maxDurationMs: 10 }))).toBe('trace-limit-exceeded');
    expect(decodeTrace(bytes, { maxRecords: 100 }).records).toHaveLength(100);
  });

  it('stops a zstd bomb at the file limit', () => {
    const bomb = compress(new Uint8Array(8 * 1024 * 1024));
    expect(codeOf(() => decodeTrace(bomb, { maxFileBytes: 1024 * 1024 }))).toBe('trace-limit-exceeded');
  });

  it('turns random and mutated bytes into a typed error, never a crash', () => {
    let s = 987654321;
    const rnd = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
    const good = encodeTrace(sampleTrace(200), { compress: false });
    const goodZ = encodeTrace(sampleTrace(200));
    let typed = 0;
    for (let i = 0; i < 3000; i++) {
      let b: Uint8Array;
      if (i % 3 === 0) {
        b = new Uint8Array(Math.floor(rnd() * 200));
        for (let j = 0; j < b.length; j++) b[j] = rnd() * 256;
        if (i % 2 === 0) b.set([0x52, 0x4b, 0x54, 0x52, 1, 0].slice(0, b.length));
      } else {
        b = (i % 3 === 1 ? good : goodZ).slice();
        const flips = 1 + Math.floor(rnd() * 4);
        for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = rnd() * 256;
      }
      try {
        decodeTrace(b);
      } catch (err) {
        expect(err).toBeInstanceOf(TraceFormatError);
        typed++;
      }
    }
    expect(typed).toBeGreaterThan(2900);
  });

  it('validates the body even when the checksum is right (a hostile encoder)', () => {
    // Build a raw-body trace by hand whose record points at path index 5 of a 1-path table.
    const good = encodeTrace(
      { header: sampleTrace(0).header, records: [{ tMs: 0, path: 'a', offsetBytes: 0, lengthBytes: 1 }] },
      { compress: false },
    );
    const body = good.slice(48);
    // The last four bytes are the one record: dt, pathRef, offset delta, length.
    body[body.length - 3] = 6;
    const prefix = good.slice(0, 16);
    const sum = createHash('sha256').update(prefix).update(body).digest();
    const forged = new Uint8Array(good.length);
    forged.set(prefix, 0);
    forged.set(sum, 16);
    forged.set(body, 48);
    expect(codeOf(() => decodeTrace(forged))).toBe('trace-invalid');
  });
});
