import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { makeTar } from '../image/test-support/tars.js';
import { sniffTar } from './sniff-tar.js';

describe('sniffTar', () => {
  it('recognises tar headers by checksum and compressed tars by magic', async () => {
    const tar = await makeTar([{ name: 'a.txt', content: 'hello' }]);
    expect(sniffTar(tar)).toEqual({ compression: 'none' });
    expect(sniffTar(gzipSync(tar))).toEqual({ compression: 'gzip' });
    expect(sniffTar(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))).toEqual({ compression: 'zstd' });
    const broken = Buffer.from(tar);
    broken[0] ^= 0xff; // the stored checksum no longer matches
    expect(sniffTar(broken.subarray(0, 512))).toEqual({ typeDetected: 'unknown' });
    expect(sniffTar(Buffer.from('PK\x03\x04rest', 'latin1'))).toEqual({ typeDetected: 'zip' });
    expect(sniffTar(Buffer.alloc(0))).toEqual({ typeDetected: 'empty file' });
  });

  it('names what it found instead of a tar', () => {
    expect(sniffTar(Buffer.from('<!DOCTYPE html><html>', 'latin1'))).toEqual({ typeDetected: 'html' });
    expect(sniffTar(Buffer.from('{"a":1}', 'latin1'))).toEqual({ typeDetected: 'json' });
    expect(sniffTar(Buffer.alloc(100))).toEqual({ typeDetected: 'truncated file' });
    expect(sniffTar(Buffer.alloc(1024))).toEqual({ typeDetected: 'empty tar (no entries) or zero bytes' });
  });
});
