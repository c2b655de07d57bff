// Server side of a delta push: delta file + the chunks the server has → the build's tar, streamed.
// Lookups run ahead (several in flight, bounded by bytes) so that a slow store or a decode pool is
// kept busy while the tar is emitted strictly in order.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { decodeChunk } from '../codec/chunk-codec.js';
import type { InputLimits } from '../format/constants.js';
import { encodeTarHeader } from '../tar/tar-writer.js';
import { ASSEMBLE_AHEAD_BYTES, ASSEMBLE_PARALLEL_LOOKUPS } from './constants.js';
import { DeltaError } from './errors.js';
import { readDelta, type DeltaHeader } from './read.js';

/**
 * Finds a chunk by its SHA-256: resolves to its raw bytes, already verified against the hash by the
 * lookup (it reads them from a store whose integrity it checks), or undefined when it has no such chunk.
 */
export type ChunkLookup = (hash: Uint8Array) => Promise<Uint8Array | undefined>;

export interface AssembleOptions {
  limits?: Partial<InputLimits>;
  /** Lookups in flight (default 16). */
  parallelLookups?: number;
  /** Called once the header is read, before any tar byte (e.g. to check tarSizeBytes against a limit). */
  onHeader?: (h: DeltaHeader) => void;
  /** Raw chunk bytes assembled so far (content only), for progress. */
  onProgress?: (contentBytes: number) => void;
}

type Pending = { bytes: Uint8Array } | { wait: Promise<Uint8Array>; rawLength: number };

const hex = (h: Uint8Array): string => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');

/**
 * The tar a delta stands for, as a byte stream: each entry's header (the engine's tar writer, so the
 * tar equals the one the client would have sent), its chunks (references through `lookup`, literals
 * decoded and checked against their SHA-256), padding, and the end-of-archive blocks — written only
 * after the trailer has been verified, so a damaged delta never yields a complete tar.
 * Errors (the stream fails with them): DeltaError 'not-a-delta' (see readDelta, and a literal whose
 * bytes do not match its hash), 'unknown-chunk' (lookup had no such chunk, or returned a wrong length),
 * and the lookup's own errors.
 */
export function assembleDelta(source: AsyncIterable<Uint8Array>, lookup: ChunkLookup, opts: AssembleOptions = {}): Readable {
  return Readable.from(generate(source, lookup, opts), { objectMode: false, highWaterMark: 1 });
}

async function* generate(source: AsyncIterable<Uint8Array>, lookup: ChunkLookup, opts: AssembleOptions): AsyncGenerator<Uint8Array> {
  const maxInflight = Math.max(1, opts.parallelLookups ?? ASSEMBLE_PARALLEL_LOOKUPS);
  const queue: Pending[] = [];
  let aheadBytes = 0;
  let inflight = 0;
  let content = 0;
  const start = (hash: Uint8Array, rawLength: number): Promise<Uint8Array> => {
    inflight++;
    const p = lookup(hash).then(
      (raw) => {
        inflight--;
        if (raw === undefined) throw new DeltaError('unknown-chunk', `delta references chunk ${hex(hash)}, which the server does not have`, hex(hash));
        if (raw.length !== rawLength) throw new DeltaError('unknown-chunk', `chunk ${hex(hash)} is ${raw.length} bytes, the delta says ${rawLength}`, hex(hash));
        return raw;
      },
      (err: unknown) => {
        inflight--;
        throw err;
      },
    );
    p.catch(() => undefined); // awaited in order below
    return p;
  };
  async function* drain(keepBytes: number): AsyncGenerator<Uint8Array> {
    while (queue.length > 0 && (aheadBytes > keepBytes || inflight >= maxInflight || keepBytes === 0)) {
      const item = queue.shift()!;
      if ('bytes' in item) {
        aheadBytes -= item.bytes.length;
        yield item.bytes;
      } else {
        const raw = await item.wait;
        aheadBytes -= item.rawLength;
        content += raw.length;
        opts.onProgress?.(content);
        yield raw;
      }
    }
  }
  let pad = 0;
  const push = (p: Pending, n: number): void => {
    queue.push(p);
    aheadBytes += n;
  };
  try {
    for await (const item of readDelta(source, opts.limits)) {
      switch (item.kind) {
        case 'header':
          opts.onHeader?.(item.header);
          break;
        case 'entry': {
          if (pad > 0) push({ bytes: Buffer.alloc(pad) }, pad);
          const e = item.entry;
          const h = encodeTarHeader(e);
          push({ bytes: h }, h.length);
          pad = e.type === 'file' && e.size % 512 !== 0 ? 512 - (e.size % 512) : 0;
          break;
        }
        case 'ref':
          push({ wait: start(item.hash, item.rawLength), rawLength: item.rawLength }, item.rawLength);
          break;
        case 'literal': {
          let raw: Buffer;
          try {
            raw = decodeChunk(item.codec, item.stored, item.rawLength);
          } catch {
            throw new DeltaError('not-a-delta', `delta: literal chunk ${hex(item.hash)} does not decode`);
          }
          if (!createHash('sha256').update(raw).digest().equals(item.hash)) {
            throw new DeltaError('not-a-delta', `delta: literal chunk ${hex(item.hash)} does not match its SHA-256`);
          }
          // A copy: the reader's buffer may be reused once the next record is read.
          push({ bytes: item.codec === 0 ? Buffer.from(raw) : raw }, raw.length);
          content += raw.length;
          break;
        }
        case 'end':
          if (pad > 0) push({ bytes: Buffer.alloc(pad) }, pad);
          yield* drain(0);
          yield Buffer.alloc(1024);
          return;
      }
      yield* drain(ASSEMBLE_AHEAD_BYTES);
    }
    throw new DeltaError('not-a-delta', 'delta: ended without a trailer');
  } finally {
    await Promise.allSettled(queue.map((q) => ('wait' in q ? q.wait : null)));
  }
}
