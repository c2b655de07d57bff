// Streams a BuildModel's files to disk. Memory stays flat: one output buffer, one content block scratch.

import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { alignUp, GPAK_HEADER_BYTES, gpakHeader, gpakToc } from './archive-format.js';
import type { GpakTocEntry } from './archive-format.js';
import { BINARY_HEADER_BYTES, FUNCTION_ALIGN_BYTES } from './build-model.js';
import type { Asset, FileContent, FileModel } from './build-model.js';
import { fillFunction, fillPayload, textLine } from './content.js';
import { mixSeed } from './prng.js';

const SINK_BYTES = 1024 * 1024;
const PAYLOAD_KIND_TAG = { noise: 1, pcm: 2, mesh: 3 } as const;

/** Buffered sequential writer over one file descriptor. */
class Sink {
  private readonly buf = new Uint8Array(SINK_BYTES);
  private pos = 0;
  written = 0;
  constructor(private readonly fd: number, private readonly onBytes: (n: number) => void) {}

  /** Lets `fill` write `n` bytes straight into the buffer, in pieces; fill(dst, doneSoFar). */
  produce(n: number, fill: (dst: Uint8Array, done: number) => void): void {
    let done = 0;
    while (done < n) {
      if (this.pos === this.buf.length) this.flush();
      const k = Math.min(n - done, this.buf.length - this.pos);
      fill(this.buf.subarray(this.pos, this.pos + k), done);
      this.pos += k;
      done += k;
    }
  }

  bytes(b: Uint8Array): void {
    this.produce(b.length, (dst, done) => dst.set(b.subarray(done, done + dst.length)));
  }

  zeros(n: number): void {
    this.produce(n, (dst) => dst.fill(0));
  }

  flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.written += this.pos;
    this.onBytes(this.pos);
    this.pos = 0;
  }
}

function writeAsset(sink: Sink, a: Asset): void {
  sink.produce(a.sizeBytes, (dst, done) => {
    fillPayload(a.kind, a.seed, done, dst);
    // Overlay edits that intersect this piece (edits apply in order; later ones win).
    for (const e of a.edits) {
      const from = Math.max(e.offsetBytes, done);
      const to = Math.min(e.offsetBytes + e.lengthBytes, done + dst.length);
      if (from < to) fillPayload('noise', mixSeed(e.seed, 7), from - e.offsetBytes, dst.subarray(from - done, to - done));
    }
  });
}

function writeContent(sink: Sink, c: FileContent): void {
  switch (c.type) {
    case 'archive': {
      const entries: GpakTocEntry[] = [];
      let p = GPAK_HEADER_BYTES;
      for (const a of c.assets) {
        p = alignUp(p);
        entries.push({ name: a.name, offsetBytes: p, sizeBytes: a.sizeBytes, kindTag: PAYLOAD_KIND_TAG[a.kind] });
        p += a.sizeBytes;
      }
      const toc = gpakToc(entries);
      const tocOffset = alignUp(p);
      sink.bytes(gpakHeader(entries.length, tocOffset, toc.length));
      let at = GPAK_HEADER_BYTES;
      c.assets.forEach((a, i) => {
        sink.zeros(entries[i].offsetBytes - at);
        writeAsset(sink, a);
        at = entries[i].offsetBytes + a.sizeBytes;
      });
      sink.zeros(tocOffset - at);
      sink.bytes(toc);
      return;
    }
    case 'binary': {
      const addrs = new Array<number>(c.functions.length);
      let p = BINARY_HEADER_BYTES;
      c.functions.forEach((f, i) => {
        addrs[i] = p;
        p += alignUp(f.sizeBytes, FUNCTION_ALIGN_BYTES);
      });
      const codeEnd = alignUp(p, FUNCTION_ALIGN_BYTES);
      const header = new Uint8Array(BINARY_HEADER_BYTES);
      header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
      const hv = new DataView(header.buffer);
      hv.setUint32(16, c.functions.length, true);
      hv.setBigUint64(24, BigInt(codeEnd), true);
      sink.bytes(header);
      const target = (k: number) => addrs[k % addrs.length];
      let scratch = new Uint8Array(0);
      c.functions.forEach((f, i) => {
        const padded = alignUp(f.sizeBytes, FUNCTION_ALIGN_BYTES);
        if (scratch.length < padded) scratch = new Uint8Array(padded);
        const out = scratch.subarray(0, padded);
        fillFunction(f.seed, addrs[i], target, out.subarray(0, f.sizeBytes));
        out.fill(0xcc, f.sizeBytes);
        sink.bytes(out);
      });
      sink.zeros(codeEnd - p);
      writeLines(sink, 'txt', c.rodata);
      return;
    }
    case 'text':
      writeLines(sink, c.style, c.lines);
      return;
    case 'blob':
      for (const g of c.segments) sink.produce(g.sizeBytes, (dst, done) => fillPayload(g.kind, g.seed, done, dst));
      return;
  }
}

function writeLines(sink: Sink, style: Parameters<typeof textLine>[0], lines: readonly number[]): void {
  for (const s of lines) sink.bytes(Buffer.from(textLine(style, s), 'latin1'));
}

/**
 * Writes one file of a build under `root` (atomically: temporary name, then rename).
 * `onBytes` is called with each flushed amount, for progress.
 */
export function writeFile(root: string, f: FileModel, onBytes: (n: number) => void): number {
  const path = join(root, ...f.path.split('/'));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  const fd = openSync(tmp, 'w', f.mode);
  const sink = new Sink(fd, onBytes);
  try {
    writeContent(sink, f.content);
    sink.flush();
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return sink.written;
}
