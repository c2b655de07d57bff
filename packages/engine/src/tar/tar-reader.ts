// Streaming tar reader: plain, gzip or zstd (detected by magic bytes), parsed by our own tar parser
// (tar-parser.ts: PAX and GNU long names, content handed out without copies). Yields InputEntry in archive
// order; memory stays bounded.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import { TarError } from '../errors.js';
import type { InputEntry } from './input-entry.js';
import { parseTar } from './tar-parser.js';

export type TarCompression = 'none' | 'gzip' | 'zstd';

/** Detects the compression of a tar from its first bytes. */
export function detectCompression(head: Uint8Array): TarCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The archive bytes after decompression; the codec is chosen from the first bytes. */
async function* decodedBytes(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  let head: Uint8Array = new Uint8Array(0);
  let ended = false;
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head = head.length === 0 ? (r.value as Uint8Array) : Buffer.concat([head, r.value as Uint8Array]);
  }
  const compression = detectCompression(head);
  async function* raw(): AsyncGenerator<Uint8Array> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Uint8Array;
    }
  }
  if (compression === 'none') {
    yield* raw();
    return;
  }
  const decoder = compression === 'gzip' ? createGunzip() : new DecompressStream();
  const feeding = pipeline(Readable.from(raw(), { objectMode: false }), decoder);
  feeding.catch(() => undefined); // surfaced through the decoder's own iteration below
  yield* decoder as AsyncIterable<Uint8Array>;
  await feeding;
}

/**
 * Reads a tar archive (path or stream). Entries' `content` must be consumed before asking for the next entry.
 * Throws TarError 'truncated' when the archive ends mid-entry or is not a tar, 'read-failed' on I/O or
 * decompression errors.
 */
export async function* readTarEntries(input: string | Readable): AsyncGenerator<InputEntry> {
  const source: Readable = typeof input === 'string' ? createReadStream(input, { highWaterMark: 1024 * 1024 }) : input;
  const name = typeof input === 'string' ? input : 'tar stream';
  try {
    yield* parseTar(mapReadErrors(decodedBytes(source), name), name);
  } catch (err) {
    if (err instanceof TarError) throw err;
    throw toTarError(err, name);
  } finally {
    if (!source.destroyed) source.destroy();
  }
}

/** I/O and decompression errors become TarErrors where they arise, so that entry content throws them too. */
async function* mapReadErrors(bytes: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<Uint8Array> {
  try {
    yield* bytes;
  } catch (err) {
    throw err instanceof TarError ? err : toTarError(err, name);
  }
}

function toTarError(err: unknown, name: string): TarError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/unexpected end|premature|truncat|invalid tar header|checksum/i.test(msg)) {
    return new TarError('truncated', name, `tar archive is truncated or not a tar: ${msg}`);
  }
  return new TarError('read-failed', name, `cannot read tar archive: ${msg}`);
}
