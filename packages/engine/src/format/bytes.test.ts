import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { ByteReader, ByteWriter, formatFailure, type ReadFailure } from './bytes.js';

const failures: { detail: string; offset: number; limit: boolean }[] = [];
const recording: ReadFailure = (detail, offset, limit) => {
  failures.push({ detail, offset, limit: limit === true });
  return new Error(detail);
};
const reader = (bytes: number[] | Uint8Array): ByteReader => new ByteReader(Uint8Array.from(bytes), recording);

describe('byte codec', () => {
  it('round-trips fixed-width integers, varints, zigzag varints, bytes and strings', () => {
    const w = new ByteWriter();
    w.u8(0x1ff);
    w.u16(0xbeef);
    w.u32(0xdeadbeef);
    for (const v of [0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER]) w.varint(v);
    for (const v of [0, -1, 1, -64, 64, -(2 ** 40), 2 ** 52 - 1]) w.svarint(v);
    w.bytes(Uint8Array.from([9, 8, 7]));
    w.string('héllo/wörld');
    const r = new ByteReader(w.finish(), recording);
    expect([r.u8(), r.u16(), r.u32()]).toEqual([0xff, 0xbeef, 0xdeadbeef]);
    expect(Array.from({ length: 7 }, () => r.varint())).toEqual([0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER]);
    expect(Array.from({ length: 7 }, () => r.svarint())).toEqual([0, -1, 1, -64, 64, -(2 ** 40), 2 ** 52 - 1]);
    expect(Array.from(r.bytes(3))).toEqual([9, 8, 7]);
    expect(r.string(64)).toBe('héllo/wörld');
    expect(r.remaining).toBe(0);
  });

  it('refuses values the writer cannot encode', () => {
    const w = new ByteWriter();
    expect(() => w.varint(-1)).toThrow(RangeError);
    expect(() => w.varint(2 ** 53)).toThrow(RangeError);
    expect(() => w.varint(1.5)).toThrow(RangeError);
    expect(() => w.svarint(2 ** 52 + 2)).toThrow(RangeError);
    w.svarint(2 ** 52); // codes as 2^53: written, but refused by readers
    expect(() => new ByteReader(w.finish(), recording).svarint()).toThrow('varint too large');
  });

  it('refuses truncated, non-minimal, oversized and overlong varints', () => {
    failures.length = 0;
    expect(() => reader([0x80]).varint()).toThrow();
    expect(() => reader([0x80, 0x00]).varint()).toThrow('non-minimal varint');
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).varint()).toThrow('varint too large');
    expect(() => reader(new Array(9).fill(0x81)).varint()).toThrow('varint too long');
    expect(failures.every((f) => !f.limit)).toBe(true);
  });

  it('refuses lengths and counts the input cannot hold, long strings as a limit, and invalid UTF-8', () => {
    failures.length = 0;
    expect(() => reader([5, 1, 2]).bytes(5)).toThrow();
    expect(() => reader([3, 0x61, 0x62]).string()).toThrow();
    expect(() => reader([3, 0x61, 0x62, 0x63]).string(2, 'name')).toThrow('name of 3 bytes exceeds 2');
    expect(failures.at(-1)?.limit).toBe(true);
    expect(() => reader([2, 0xc3, 0x28]).string(8, 'name')).toThrow('name is not valid UTF-8');
    expect(() => reader([100, 0, 0]).count(1)).toThrow('implausible count 100');
    expect(() => reader([3, 0, 0, 0]).count(1, 2)).toThrow('implausible count 3');
    expect(reader([2, 0, 0]).count(1)).toBe(2);
  });

  it('reports image format failures as FormatError format-truncated naming the part and offset', () => {
    const err = (() => {
      try {
        new ByteReader(Uint8Array.from([1]), formatFailure('manifest')).u32();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(FormatError);
    expect(err).toMatchObject({ code: 'format-truncated' });
    expect((err as Error).message).toMatch(/^manifest: .* at byte 0$/);
  });
});
