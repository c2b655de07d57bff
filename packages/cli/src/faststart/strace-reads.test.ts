import { describe, expect, it } from 'vitest';
import { StraceReads } from './strace-reads.js';

const ROOT = '/games/g';
const rel = (abs: string) => (abs.startsWith(ROOT + '/') ? abs.slice(ROOT.length + 1) : null);

function parse(lines: string[], sizes: Record<string, number> = {}) {
  const s = new StraceReads(rel);
  for (const l of lines) s.line(l);
  return s.finish((p) => sizes[p]);
}

describe('StraceReads', () => {
  it('tracks positions through open, read, lseek, readv; explicit offsets for pread64/preadv/preadv2', () => {
    const r = parse([
      '100 1000.000000 openat(AT_FDCWD</games/g>, "a.pak", O_RDONLY) = 3</games/g/a.pak>',
      '100 1000.001000 read(3</games/g/a.pak>, ""..., 4096) = 4096',
      '100 1000.002000 read(3</games/g/a.pak>, ""..., 4096) = 100',
      '100 1000.003000 lseek(3</games/g/a.pak>, 9000, SEEK_SET) = 9000',
      '100 1000.004000 readv(3</games/g/a.pak>, [{iov_base=""..., iov_len=10}, {iov_base=""..., iov_len=20}], 2) = 30',
      '101 1000.005000 pread64(3</games/g/a.pak>, ""..., 50, 123456) = 50',
      '101 1000.006000 preadv(3</games/g/a.pak>, [{iov_base=""..., iov_len=8}], 1, 77) = 8',
      '101 1000.007000 preadv2(3</games/g/a.pak>, [{iov_base=""..., iov_len=8}], 1, 500, RWF_NOWAIT) = 8',
      '101 1000.008000 read(3</games/g/a.pak>, "", 4096) = 0',
      '101 1000.009000 read(4</etc/passwd>, ""..., 4096) = 2000',
      '101 1000.010000 read(5</games/g/b.bin>, ""..., 10) = -1 EAGAIN (Resource temporarily unavailable)',
      '101 1000.011000 +++ exited with 0 +++',
    ]);
    expect(r.records).toEqual([
      { tMs: 1, path: 'a.pak', offsetBytes: 0, lengthBytes: 4096 },
      { tMs: 2, path: 'a.pak', offsetBytes: 4096, lengthBytes: 100 },
      { tMs: 4, path: 'a.pak', offsetBytes: 9000, lengthBytes: 30 },
      { tMs: 5, path: 'a.pak', offsetBytes: 123456, lengthBytes: 50 },
      { tMs: 6, path: 'a.pak', offsetBytes: 77, lengthBytes: 8 },
      { tMs: 7, path: 'a.pak', offsetBytes: 500, lengthBytes: 8 },
    ]);
    expect(r.startUnixSeconds).toBe(1000);
    expect(r.skippedLines).toBe(0);
  });

  it('joins unfinished and resumed calls per process, and reads file-backed mmaps (clipped to the file)', () => {
    const r = parse(
      [
        '7 5.000000 openat(AT_FDCWD</x>, "/games/g/lib.so", O_RDONLY|O_CLOEXEC) = 3</games/g/lib.so>',
        '7 5.001000 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 3</games/g/lib.so>, 0x1000 <unfinished ...>',
        '8 5.001500 read(4</games/g/other>, ""..., 10 <unfinished ...>',
        '7 5.002000 <... mmap resumed>) = 0x7f0000000000',
        '8 5.003000 <... read resumed>) = 10',
        '7 5.004000 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000100000',
        '7 5.005000 mmap(NULL, 65536, PROT_READ, MAP_PRIVATE, 3</games/g/lib.so>, 0) = 0x7f0000200000',
        'garbage that is not strace',
      ],
      { 'lib.so': 10_000 },
    );
    expect(r.records).toEqual([
      { tMs: 2, path: 'lib.so', offsetBytes: 4096, lengthBytes: 5904 },
      { tMs: 3, path: 'other', offsetBytes: 0, lengthBytes: 10 },
      { tMs: 5, path: 'lib.so', offsetBytes: 0, lengthBytes: 10_000 },
    ]);
    expect(r.skippedLines).toBe(1);
  });
});
