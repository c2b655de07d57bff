import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { decodeTrace, decodeTraceNdjson, detectTraceForm, encodeTrace, encodeTraceNdjson, parseAnyTrace, TraceFormatError } from './index.js';
import type { Trace } from './index.js';

function sample(n = 300): Trace {
  const paths = ['bin/game', 'data/pak/common.pak', 'data/é ü "q".pak'];
  const records = [];
  let s = 99;
  const next = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += Math.floor(next() * 3) * 5;
    records.push({ tMs: t, path: paths[Math.floor(next() * 3)], offsetBytes: Math.floor(next() * 2 ** 40), lengthBytes: 1 + Math.floor(next() * 1e6) });
  }
  return {
    header: { orgName: 'acme', appName: 'game', buildId: 7, dxfName: 'dxf-1', sessionId: 's-1', firstSession: true, startTimeUnixSeconds: 1_767_225_600 },
    records,
  };
}

const enc = new TextEncoder();
const HEADER = '{"format":"rockit-trace","version":1,"org":"o","app":"a","session":"s","firstSession":false,"start":5}';
function nd(...lines: string[]): Uint8Array {
  return enc.encode(lines.join('\n') + '\n');
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

describe('NDJSON trace form', () => {
  it('round-trips and equals the binary form', () => {
    const t = sample();
    const text = encodeTraceNdjson(t);
    const back = decodeTraceNdjson(text);
    expect(back).toEqual(decodeTrace(encodeTrace(t)));
    const firstLine = new TextDecoder().decode(text).split('\n')[0];
    expect(JSON.parse(firstLine)).toEqual({ format: 'rockit-trace', version: 1, org: 'acme', app: 'game', build: 7, dxf: 'dxf-1', session: 's-1', firstSession: true, start: 1_767_225_600 });
  });

  it('omits unknown build and dxf, reads them back as 0 and empty', () => {
    const t = decodeTraceNdjson(nd(HEADER, '{"t":3,"path":"a/b","offset":0,"length":9}'));
    expect(t.header).toEqual({ orgName: 'o', appName: 'a', buildId: 0, dxfName: '', sessionId: 's', firstSession: false, startTimeUnixSeconds: 5 });
    expect(t.records).toEqual([{ tMs: 3, path: 'a/b', offsetBytes: 0, lengthBytes: 9 }]);
  });

  it('stable-sorts records whose times go back', () => {
    const t = decodeTraceNdjson(
      nd(HEADER, '{"t":30,"path":"x","offset":0,"length":1}', '{"t":10,"path":"y","offset":0,"length":1}', '{"t":30,"path":"z","offset":0,"length":1}', '{"t":10,"path":"w","offset":0,"length":1}'),
    );
    expect(t.records.map((r) => r.path)).toEqual(['y', 'w', 'x', 'z']);
  });

  it('parseAnyTrace recognises binary and NDJSON, plain or zstd-wrapped, by content', () => {
    const t = sample(50);
    const expected = decodeTrace(encodeTrace(t));
    const bin = encodeTrace(t);
    const text = encodeTraceNdjson(t);
    for (const bytes of [bin, text, compress(bin), compress(text), enc.encode('\ufeff' + new TextDecoder().decode(text))]) {
      expect(parseAnyTrace(bytes)).toEqual(expected);
    }
    expect(detectTraceForm(bin)).toBe('binary');
    expect(detectTraceForm(text)).toBe('ndjson');
    expect(detectTraceForm(enc.encode('hello'))).toBeNull();
    expect(codeOf(() => parseAnyTrace(enc.encode('hello world')))).toBe('trace-bad-magic');
    expect(codeOf(() => parseAnyTrace(new Uint8Array(0)))).toBe('trace-truncated');
  });

  it('refuses hostile and malformed input with stable codes', () => {
    const rec = (o: unknown) => nd(HEADER, JSON.stringify(o));
    const cases: Array<[Uint8Array, string]> = [
      [nd('{"format":"other","version":1}'), 'trace-bad-magic'],
      [nd(HEADER.replace('"version":1', '"version":2')), 'trace-unsupported-version'],
      [nd(HEADER.replace('}', ',"extra":1}')), 'trace-invalid'],
      [nd(HEADER.replace('"firstSession":false', '"firstSession":"no"')), 'trace-invalid'],
      [nd(HEADER.replace('"org":"o"', `"org":"${'o'.repeat(300)}"`)), 'trace-limit-exceeded'],
      [nd(HEADER.replace('"start":5', '"start":-5')), 'trace-invalid'],
      [enc.encode(''), 'trace-truncated'],
      [nd('[1,2]'), 'trace-invalid'],
      [nd('{not json'), 'trace-invalid'],
      [rec({ t: 0, path: '../etc/passwd', offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: '/abs', offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 'a\\b', offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 'a/./b', offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 'x'.repeat(5000), offset: 0, length: 1 }), 'trace-limit-exceeded'],
      [rec({ t: -1, path: 'a', offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 1.5, path: 'a', offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 8 * 24 * 3600 * 1000, path: 'a', offset: 0, length: 1 }), 'trace-limit-exceeded'],
      [rec({ t: 0, path: 'a', offset: 0, length: 0 }), 'trace-invalid'],
      [rec({ t: 0, path: 'a', offset: 2 ** 60, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 'a', offset: Number.MAX_SAFE_INTEGER, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 'a', offset: '0', length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 7, offset: 0, length: 1 }), 'trace-invalid'],
      [rec({ t: 0, path: 'a', offset: 0, length: 1, extra: true }), 'trace-invalid'],
      [rec({ t: 0, path: 'a', offset: 0 }), 'trace-invalid'],
      [nd(HEADER, 'x'.repeat(70_000)), 'trace-limit-exceeded'],
      [Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d), 'trace-invalid'],
    ];
    cases.forEach(([bytes, code], i) => expect([i, codeOf(() => decodeTraceNdjson(bytes))]).toEqual([i, code]));
  });

  it('enforces record, path and size limits', () => {
    const lines = [HEADER];
    for (let i = 0; i < 20; i++) lines.push(JSON.stringify({ t: i, path: `p${i}`, offset: 0, length: 1 }));
    const bytes = nd(...lines);
    expect(codeOf(() => decodeTraceNdjson(bytes, { maxRecords: 10 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTraceNdjson(bytes, { maxPaths: 10 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => decodeTraceNdjson(bytes, { maxBodyBytes: 100 }))).toBe('trace-limit-exceeded');
    expect(codeOf(() => parseAnyTrace(bytes, { maxFileBytes: 100 }))).toBe('trace-limit-exceeded');
    expect(decodeTraceNdjson(bytes).records).toHaveLength(20);
  });

  it('bounds a zstd bomb and refuses a truncated frame', () => {
    const bomb = compress(enc.encode(HEADER + '\n' + ' '.repeat(8 * 1024 * 1024)));
    expect(bomb.length).toBeLessThan(4096);
    expect(codeOf(() => parseAnyTrace(bomb, { maxFileBytes: 1 << 20, maxBodyBytes: 1 << 20 }))).toBe('trace-limit-exceeded');
    const z = compress(encodeTraceNdjson(sample(50)));
    expect(codeOf(() => parseAnyTrace(z.subarray(0, z.length - 5)))).toMatch(/trace-(truncated|invalid)/);
  });

  it('never crashes on random or mutated input (only TraceFormatError)', () => {
    const base = encodeTraceNdjson(sample(40));
    let s = 7;
    const next = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
    for (let i = 0; i < 500; i++) {
      const m = Uint8Array.from(base);
      for (let k = 0; k < 1 + Math.floor(next() * 4); k++) m[Math.floor(next() * m.length)] = Math.floor(next() * 256);
      codeOf(() => parseAnyTrace(m));
      const r = Uint8Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256));
      if (next() < 0.5) r[0] = 0x7b;
      codeOf(() => parseAnyTrace(r));
    }
  });
});
