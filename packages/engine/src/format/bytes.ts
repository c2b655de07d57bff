// Growable byte writer and bounds-checked reader with unsigned LEB128 varints (up to 2^53-1).
// Every read checks bounds and throws FormatError, so decoders never read past the end or loop forever.
import { FormatError } from '../errors.js';

export class ByteWriter {
  private buf = new Uint8Array(1024);
  private pos = 0;

  get length(): number {
    return this.pos;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }

  /** Unsigned varint; v must be a safe non-negative integer. */
  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** Signed varint (zigzag). */
  svarint(v: number): void {
    this.varint(v < 0 ? -2 * v - 1 : 2 * v);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Length-prefixed UTF-8. */
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    this.bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

export class ByteReader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private fail(detail: string): never {
    throw new FormatError(`${this.what}: ${detail} at byte ${this.pos}`, 'format-truncated');
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('unexpected end');
    return this.buf[this.pos++];
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) this.fail('varint too large');
        return result;
      }
      mul *= 0x80;
    }
    this.fail('varint too long');
  }

  svarint(): number {
    const z = this.varint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  bytes(n: number): Uint8Array {
    if (n < 0 || n > this.remaining) this.fail(`needs ${n} bytes, ${this.remaining} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(maxBytes: number): string {
    const n = this.varint();
    if (n > maxBytes) this.fail(`string of ${n} bytes exceeds ${maxBytes}`);
    const b = this.bytes(n);
    const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
    if (s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(b)) this.fail('invalid UTF-8');
    return s;
  }

  /** A count of items each needing at least `minBytesEach` bytes: refuses counts the input cannot hold. */
  count(minBytesEach: number, max: number): number {
    const n = this.varint();
    if (n > max || n * minBytesEach > this.remaining) this.fail(`implausible count ${n}`);
    return n;
  }
}
