// The engine's one byte codec (image manifest, patch, trace): a growable writer and a bounds-checked
// reader with little-endian fixed-width integers and LEB128 varints (unsigned, and signed by zigzag).
//
// Varints carry JavaScript safe integers only (≤ 2^53 − 1, at most 8 bytes, minimal encoding);
// strings are length-prefixed UTF-8. The reader never reads past its buffer, never trusts a length
// or count it cannot cover, and refuses non-minimal or oversized varints and invalid UTF-8: every
// failure is an error built by the format's own `fail` (so it names the format, part and offset).
import { FormatError } from '../errors.js';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Growable output buffer. `finish()` returns the bytes written (a view: do not write after it). */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(1024);
  private len = 0;

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.len++] = v & 0xff;
  }

  u16(v: number): void {
    this.reserve(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
  }

  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
  }

  /** Unsigned varint; `v` must be a safe non-negative integer (RangeError otherwise). */
  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.leb128(v);
  }

  /**
   * Signed varint (zigzag); `v` an integer with |v| ≤ 2^52. (2^52 codes as 2^53, which readers
   * refuse as too large: encoders of hostile test input rely on writing it.)
   */
  svarint(v: number): void {
    if (!Number.isInteger(v) || Math.abs(v) > 2 ** 52) throw new RangeError(`svarint out of range: ${v}`);
    this.leb128(v < 0 ? -2 * v - 1 : 2 * v);
  }

  private leb128(v: number): void {
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Length-prefixed UTF-8. */
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    this.bytes(b);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * Builds a reader's error: `detail` says what is wrong, `offset` where; `limit` is set when the
 * input is well-formed but exceeds a caller's limit (a string longer than `maxBytes`).
 */
export type ReadFailure = (detail: string, offset: number, limit?: boolean) => Error;

/** The image formats' failure: a FormatError `format-truncated` naming `what` and the offset. */
export const formatFailure =
  (what: string): ReadFailure =>
  (detail, offset) =>
    new FormatError(`${what}: ${detail} at byte ${offset}`, 'format-truncated');

/** Reader over a fully received buffer; every failure is thrown as `fail` builds it. */
export class ByteReader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly fail: ReadFailure,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || n > this.buf.length - this.pos) throw this.fail(`unexpected end (need ${n} bytes, ${this.remaining} left)`, this.pos);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.buf[this.pos] | (this.buf[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000;
  }

  /** Unsigned varint: a safe integer, minimally encoded, at most 8 bytes. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw this.fail('non-minimal varint', this.pos);
        if (!Number.isSafeInteger(result)) throw this.fail('varint too large', this.pos);
        return result;
      }
      scale *= 0x80;
    }
    throw this.fail('varint too long', this.pos);
  }

  /** Signed varint (zigzag). */
  svarint(): number {
    const z = this.varint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Length-prefixed UTF-8 of at most `maxBytes` bytes (a longer one fails with `limit`); invalid UTF-8 is refused. */
  string(maxBytes = Number.MAX_SAFE_INTEGER, what = 'string'): string {
    const n = this.varint();
    if (n > maxBytes) throw this.fail(`${what} of ${n} bytes exceeds ${maxBytes}`, this.pos, true);
    const b = this.bytes(n);
    try {
      return utf8Decoder.decode(b);
    } catch {
      throw this.fail(`${what} is not valid UTF-8`, this.pos);
    }
  }

  /** A count of items each needing at least `minBytesEach` bytes: refuses counts above `max` or that the input cannot hold. */
  count(minBytesEach: number, max = Number.MAX_SAFE_INTEGER): number {
    const n = this.varint();
    if (n > max || n * minBytesEach > this.remaining) throw this.fail(`implausible count ${n}`, this.pos);
    return n;
  }
}
