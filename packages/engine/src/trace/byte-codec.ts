// Bounds-checked byte writer/reader with LEB128 varints, private to the trace format.
// Varints carry JavaScript safe integers only (≤ 2^53 − 1, at most 8 bytes); anything else is refused.

import { TraceFormatError } from './trace-error.js';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Growable output buffer. */
export class ByteWriter {
  private buf = new Uint8Array(1024);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
  }

  /** Unsigned LEB128 of a safe non-negative integer. */
  varuint(v: number): void {
    this.ensure(8);
    let x = v;
    while (x >= 0x80) {
      this.buf[this.len++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.len++] = x;
  }

  /** Zigzag-coded signed safe integer (|v| ≤ 2^52). */
  varint(v: number): void {
    this.varuint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Length-prefixed UTF-8 string. */
  string(s: string): void {
    const b = utf8Encoder.encode(s);
    this.varuint(b.length);
    this.bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Reader over a fully received buffer; every overrun is a TraceFormatError('trace-invalid'). */
export class ByteReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private fail(what: string): never {
    throw new TraceFormatError('trace-invalid', `trace body: ${what} at byte ${this.pos}`);
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('unexpected end');
    return this.buf[this.pos++];
  }

  varuint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) this.fail('unexpected end in varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) this.fail('non-minimal varint');
        if (result > Number.MAX_SAFE_INTEGER) this.fail('varint out of range');
        return result;
      }
      scale *= 0x80;
    }
    return this.fail('varint too long');
  }

  varint(): number {
    const z = this.varuint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** Length-prefixed UTF-8 string of at most maxBytes bytes; invalid UTF-8 is refused. */
  string(maxBytes: number, what: string): string {
    const n = this.varuint();
    if (n > maxBytes) throw new TraceFormatError('trace-limit-exceeded', `${what} longer than ${maxBytes} bytes`);
    if (n > this.remaining) this.fail(`${what} overruns the body`);
    const slice = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return utf8Decoder.decode(slice);
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }
}
