// Streaming tar reader: plain, gzip or zstd (detected by magic bytes), over tar-stream. PAX and GNU long
// names/link names are resolved by tar-stream. Yields InputEntry in archive order; memory stays bounded.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tarStream from 'tar-stream';
import { DecompressStream } from 'zstd-napi';
import { TarError } from '../errors.js';
import type { InputEntry } from './input-entry.js';

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

function mapType(t: string | null | undefined): InputEntry['type'] {
  switch (t) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    default:
      return 'other';
  }
}

/**
 * Reads a tar archive (path or stream). Entries' `content` must be consumed before asking for the next entry.
 * Throws TarError 'truncated' when the archive ends mid-entry or is not a tar, 'read-failed' on I/O or
 * decompression errors.
 */
export async function* readTarEntries(input: string | Readable): AsyncGenerator<InputEntry> {
  const source: Readable = typeof input === 'string' ? createReadStream(input, { highWaterMark: 1024 * 1024 }) : input;
  const extract = tarStream.extract();
  const decoded = Readable.from(decodedBytes(source), { objectMode: false });
  let failure: unknown;
  const piping = pipeline(decoded, extract).catch((err: unknown) => {
    failure = err;
    extract.destroy(err as Error);
  });
  const name = typeof input === 'string' ? input : 'tar stream';
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const type = mapType(h.type);
      const item: InputEntry = {
        name: h.name,
        type,
        detectedType: h.type ?? 'unknown',
        mode: h.mode ?? 0o644,
        sizeBytes: type === 'file' ? (h.size ?? 0) : 0,
        linkTarget: h.linkname ?? '',
      };
      if (type === 'file') {
        item.content = guardContent(entry as unknown as AsyncIterable<Uint8Array>, h.name);
        yield item;
        entry.resume();
      } else {
        entry.resume();
        yield item;
      }
    }
    await piping;
    if (failure) throw failure;
  } catch (err) {
    if (err instanceof TarError) throw err;
    throw toTarError(err ?? failure, name);
  } finally {
    if (!source.destroyed) source.destroy();
  }
}

async function* guardContent(content: AsyncIterable<Uint8Array>, entryName: string): AsyncGenerator<Uint8Array> {
  try {
    yield* content;
  } catch (err) {
    throw err instanceof TarError ? err : toTarError(err, entryName);
  }
}

function toTarError(err: unknown, name: string): TarError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/unexpected end|premature|truncat|invalid tar header|checksum/i.test(msg)) {
    return new TarError('truncated', name, `tar archive is truncated or not a tar: ${msg}`);
  }
  return new TarError('read-failed', name, `cannot read tar archive: ${msg}`);
}
