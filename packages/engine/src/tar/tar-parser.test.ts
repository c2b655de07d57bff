import { describe, expect, it } from 'vitest';
import { TarError } from '../errors.js';
import { parseTar } from './tar-parser.js';

interface HeaderSpec {
  name: string;
  flag?: string;
  size?: number;
  /** GNU base-256 size field instead of octal. */
  base256?: boolean;
  link?: string;
  prefix?: string;
  mode?: number;
}

function header(h: HeaderSpec): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  b.write(((h.mode ?? 0o644).toString(8).padStart(7, '0')) + '\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  const size = h.size ?? 0;
  if (h.base256) {
    b[124] = 0x80;
    b.writeUIntBE(size, 132 - 6 + 4, 6);
  } else b.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(h.flag ?? '0', 156, 'latin1');
  if (h.link) b.write(h.link, 157, 100, 'utf8');
  b.write('ustar\0' + '00', 257, 'latin1');
  if (h.prefix) b.write(h.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

function data(content: Buffer): Buffer {
  return Buffer.concat([content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
}

function pax(records: Record<string, string>, flag = 'x'): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len++;
    body += `${len}${rest}`;
  }
  const bytes = Buffer.from(body);
  return Buffer.concat([header({ name: 'PaxHeader', flag, size: bytes.length }), data(bytes)]);
}

const END = Buffer.alloc(1024);

/** Feeds `tar` in pieces of `piece` bytes (headers and content straddle reads). */
async function* pieces(tar: Buffer, piece: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < tar.length; i += piece) yield tar.subarray(i, i + piece);
}

async function list(tar: Buffer, piece = 700, consume = true): Promise<string[]> {
  const out: string[] = [];
  for await (const e of parseTar(pieces(tar, piece), 't.tar')) {
    let body = '';
    if (e.content && consume) for await (const c of e.content) body += Buffer.from(c).toString();
    out.push(`${e.type}:${e.name}:${e.linkTarget}:${e.sizeBytes}:${body}`);
  }
  return out;
}

async function failure(tar: Buffer): Promise<TarError> {
  try {
    await list(tar);
  } catch (err) {
    return err as TarError;
  }
  throw new Error('expected a failure');
}

describe('tar parser', () => {
  it('reads ustar prefixes, base-256 sizes, links and pre-POSIX folder entries, in any read split', async () => {
    const tar = Buffer.concat([
      header({ name: 'dir/', flag: '5' }),
      header({ name: 'old-style/', flag: '0' }),
      header({ name: 'file.txt', prefix: 'dir/deep', size: 5 }),
      data(Buffer.from('hello')),
      header({ name: 'big', size: 3, base256: true }),
      data(Buffer.from('abc')),
      header({ name: 'ln', flag: '2', link: 'big' }),
      header({ name: 'hl', flag: '1', link: 'big' }),
      END,
    ]);
    const expected = ['dir:dir/::0:', 'dir:old-style/::0:', 'file:dir/deep/file.txt::5:hello', 'file:big::3:abc', 'symlink:ln:big:0:', 'hardlink:hl:big:0:'];
    for (const piece of [1, 511, 512, 700, 1 << 20]) expect(await list(tar, piece)).toEqual(expected);
  });

  it('applies PAX records (per entry and global) and GNU long names to the next entry only', async () => {
    const long = 'x'.repeat(300);
    const gnuName = Buffer.from(long + '\0');
    const tar = Buffer.concat([
      pax({ path: 'pax/name.bin', size: '4' }),
      header({ name: 'short', size: 999 }),
      data(Buffer.from('data')),
      header({ name: '././@LongLink', flag: 'L', size: gnuName.length }),
      data(gnuName),
      header({ name: 'truncated-name', size: 0 }),
      pax({ linkpath: 'pax/name.bin' }, 'g'),
      header({ name: 'plain' }),
      header({ name: 'l', flag: '2', link: 'ignored' }),
      END,
    ]);
    expect(await list(tar)).toEqual(['file:pax/name.bin::4:data', `file:${long}::0:`, 'file:plain::0:', 'symlink:l:pax/name.bin:0:']);
  });

  it('skips content the consumer did not read', async () => {
    const tar = Buffer.concat([header({ name: 'a', size: 1500 }), data(Buffer.alloc(1500, 0x61)), header({ name: 'b', size: 2 }), data(Buffer.from('ok')), END]);
    expect(await list(tar, 100, false)).toEqual(['file:a::1500:', 'file:b::2:']);
  });

  it('names other entry types like tar-stream does', async () => {
    const tar = Buffer.concat([header({ name: 'p', flag: '6' }), header({ name: 'c', flag: '3' }), header({ name: 's', flag: 'S' }), END]);
    const types: string[] = [];
    for await (const e of parseTar(pieces(tar, 512), 't.tar')) types.push(`${e.type}/${e.detectedType}`);
    expect(types).toEqual(['other/fifo', 'other/character-device', 'other/typeflag-S']);
  });

  it('accepts an archive without end blocks but refuses truncation, bad checksums and non-tars', async () => {
    const ok = Buffer.concat([header({ name: 'a', size: 3 }), data(Buffer.from('abc'))]);
    expect(await list(ok)).toEqual(['file:a::3:abc']);
    expect(await list(END)).toEqual([]); // only end blocks: an empty archive
    const cases: Buffer[] = [
      ok.subarray(0, 514), // inside the content
      ok.subarray(0, 300), // inside the header
      Buffer.concat([ok, header({ name: 'b' }).subarray(0, 100)]),
      Buffer.from('this is not a tar archive at all'.repeat(40)),
      Buffer.alloc(0),
      (() => {
        const b = Buffer.concat([ok, END]);
        b[10] ^= 1; // checksum no longer matches
        return b;
      })(),
    ];
    for (const bad of cases) {
      const err = await failure(bad);
      expect(err).toBeInstanceOf(TarError);
      expect(err.code).toBe('truncated');
    }
  });
});
