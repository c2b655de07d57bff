// Decode + verify + write one read of an image's pack (extraction). Runs inside codec workers and, as a fallback,
// on the calling thread. The worker does the file I/O itself, so the thread that reads packs never waits on
// writes: each chunk is decoded (zstd into a per-thread scratch buffer; raw chunks stay where they were read),
// its SHA-256 checked against its id, and written with positional writes to every place listed for it.
import { closeSync, constants, fchmodSync, openSync, writeSync } from 'node:fs';
import { decodeChunkInto, sha256 } from './chunk-codec.js';
import { DECODE_OK } from './codec-batch.js';
import { Codec } from '../format/types.js';

/** Bytes reserved at the start of a job's buffer for the result word; payloads start after them (8: aligned). */
export const DECODE_WRITE_HEADER_BYTES = 8;

/** Decoded bytes gathered before they are written (bounds a thread's scratch memory; a bigger chunk grows it once). */
const SCRATCH_BYTES = 4 * 1024 * 1024;

/** Stored payloads of adjacent chunks, where each goes, and what to set when done. */
export interface DecodeWriteJob {
  kind: 'decode-write';
  /**
   * [result word, DECODE_WRITE_HEADER_BYTES][stored payloads back to back]. Transferred to the worker and back:
   * the caller reuses it for a later read.
   */
  buffer: ArrayBuffer;
  /** Bytes of stored payloads after the header. */
  dataBytes: number;
  codecs: Uint8Array;
  storedLengths: Uint32Array;
  rawLengths: Uint32Array;
  /** Expected SHA-256 per chunk (its id), 32 bytes each. */
  hashes: Uint8Array;
  /** Places of chunk k: placeStart[k] .. placeStart[k + 1] - 1 (CSR). A chunk may have none. */
  placeStart: Uint32Array;
  /** Index into `paths` per place. */
  placeFile: Uint32Array;
  /** Byte offset in the file per place. */
  placeOffset: Float64Array;
  /** Absolute paths of the files this job writes (created when missing, never truncated). */
  paths: string[];
  /** Permission bits to set on each path after its writes (0: leave as is). */
  modes: Uint16Array;
}

let scratch = Buffer.allocUnsafe(0);

/** One pending positional write: consecutive places of one file whose bytes lie back to back in one buffer. */
interface Pending {
  fd: number;
  buf: Uint8Array;
  start: number;
  end: number;
  at: number;
}

function flush(p: Pending | undefined): undefined {
  if (p === undefined) return undefined;
  const len = p.end - p.start;
  let w = 0;
  while (w < len) w += writeSync(p.fd, p.buf, p.start + w, len - w, p.at + w);
  return undefined;
}

/**
 * Decodes, verifies and writes every chunk of the job. Returns the job's buffer with its first u32 set to
 * DECODE_OK, or to the index of the first chunk that does not decode to its SHA-256 (nothing of it, nor of the
 * chunks after it, is written). File system errors are thrown. Every file descriptor opened is closed on return.
 */
export function decodeAndWrite(job: DecodeWriteJob): Uint8Array {
  const n = job.codecs.length;
  const all = new Uint8Array(job.buffer);
  const status = new DataView(job.buffer, 0, 4);
  const fds = new Array<number>(job.paths.length).fill(-1);
  const fdOf = (i: number): number => (fds[i] >= 0 ? fds[i] : (fds[i] = openSync(job.paths[i], constants.O_WRONLY | constants.O_CREAT, 0o644)));
  status.setUint32(0, DECODE_OK, true);
  let pending: Pending | undefined;
  try {
    let src = DECODE_WRITE_HEADER_BYTES;
    let pos = 0;
    for (let k = 0; k < n; k++) {
      const stored = all.subarray(src, src + job.storedLengths[k]);
      src += job.storedLengths[k];
      const len = job.rawLengths[k];
      let buf: Uint8Array;
      let start: number;
      if ((job.codecs[k] as Codec) === Codec.Raw && stored.length === len) {
        buf = all;
        start = stored.byteOffset;
      } else {
        if (pos + len > scratch.length) {
          pending = flush(pending); // the scratch bytes are about to be overwritten
          pos = 0;
          if (len > scratch.length) scratch = Buffer.allocUnsafe(Math.max(len, SCRATCH_BYTES));
        }
        buf = scratch;
        start = pos;
        try {
          decodeChunkInto(job.codecs[k] as Codec, stored, scratch.subarray(pos, pos + len));
        } catch {
          status.setUint32(0, k, true);
          return all;
        }
        pos += len;
      }
      const bytes = buf.subarray(start, start + len);
      if (!sha256(bytes).equals(job.hashes.subarray(32 * k, 32 * k + 32))) {
        status.setUint32(0, k, true);
        return all;
      }
      for (let s = job.placeStart[k]; s < job.placeStart[k + 1]; s++) {
        const fd = fdOf(job.placeFile[s]);
        const at = job.placeOffset[s];
        if (pending !== undefined && pending.fd === fd && pending.buf === buf && pending.end === start && pending.at + (pending.end - pending.start) === at) {
          pending.end += len;
        } else {
          pending = flush(pending);
          pending = { fd, buf, start, end: start + len, at };
        }
      }
    }
    pending = flush(pending);
    for (let i = 0; i < job.paths.length; i++) if (job.modes[i] !== 0) fchmodSync(fdOf(i), job.modes[i]);
    return all;
  } finally {
    for (const fd of fds) if (fd >= 0) closeSync(fd);
  }
}
