// Growable byte writer and bounds-checked reader with LEB128 varints. The reader never reads
// past its buffer and never trusts a length it cannot cover: every failure is a thrown
// error built by the caller's `fail` (so it names the patch part and offset).

export class ByteWriter {
  private buf = Buffer.allocUnsafe(4096);
  private len = 0;

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

  /** Unsigned varint; v must be a safe non-negative integer. */
  uv(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.reserve(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  /** Signed varint (zigzag). */
  sv(v: number): void {
    this.uv(v < 0 ? -2 * v - 1 : 2 * v);
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.uv(b.length);
    this.bytes(b);
  }

  get length(): number {
    return this.len;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

export class ByteReader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly fail: (detail: string, offset: number) => Error,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n > this.buf.length - this.pos) throw this.fail(`truncated (need ${n} bytes, ${this.remaining} left)`, this.pos);
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

  uv(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return result;
      mul *= 0x80;
    }
    throw this.fail('varint too long', this.pos);
  }

  sv(): number {
    const z = this.uv();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** A count of items each at least `minItemBytes` long: refused when the rest of the buffer cannot hold them. */
  count(minItemBytes: number): number {
    const n = this.uv();
    if (n * minItemBytes > this.remaining) throw this.fail(`count ${n} exceeds the remaining bytes`, this.pos);
    return n;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(): string {
    const n = this.uv();
    return Buffer.from(this.bytes(n)).toString('utf8');
  }
}
