// Recognising a would-be build tar from its first bytes (the import's dltar step and the upload
// PUT both refuse anything else before storing gigabytes of it).
import type { TarCompression } from './tar-reader.js';

const TAR_BLOCK = 512;

/**
 * Classifies the first bytes of a would-be tar. `null` means "a tar"; otherwise what was found.
 * A plain tar's first 512-byte header must carry a valid checksum (this accepts v7, ustar, GNU and
 * PAX archives); gzip and zstd are recognised by magic only (the engine checks their content).
 */
export function sniffTar(head: Buffer): { compression: TarCompression } | { typeDetected: string } {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return { compression: 'gzip' };
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return { compression: 'zstd' };
  if (head.length >= TAR_BLOCK && tarChecksumOk(head.subarray(0, TAR_BLOCK))) return { compression: 'none' };
  return { typeDetected: describeBytes(head) };
}

function tarChecksumOk(block: Buffer): boolean {
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]{1,8}$/.test(field)) return false;
  const stored = parseInt(field, 8);
  let unsigned = 0;
  for (let i = 0; i < TAR_BLOCK; i++) unsigned += i >= 148 && i < 156 ? 0x20 : block[i];
  return stored === unsigned;
}

function describeBytes(b: Buffer): string {
  if (b.length === 0) return 'empty file';
  if (b.length < TAR_BLOCK && b.every((x) => x === 0)) return 'truncated file';
  if (b.every((x) => x === 0)) return 'empty tar (no entries) or zero bytes';
  const starts = (sig: number[]): boolean => sig.every((x, i) => b[i] === x);
  if (starts([0x50, 0x4b, 0x03, 0x04])) return 'zip';
  if (starts([0x42, 0x5a, 0x68])) return 'bzip2';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return '7z';
  const text = b.subarray(0, 64).toString('latin1').trimStart().toLowerCase();
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'html';
  if (text.startsWith('<?xml') || text.startsWith('<')) return 'xml';
  if (text.startsWith('{') || text.startsWith('[')) return 'json';
  if (b.length < TAR_BLOCK) return 'truncated file';
  return 'unknown';
}
