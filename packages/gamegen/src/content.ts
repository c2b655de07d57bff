// Byte content of generated files. Every generator is random-access: the bytes at any offset of a
// stream depend only on (kind, seed, offset), so a changed version is described by small recipes
// and written by streaming, never by holding a file in memory.

import { mixSeed, Rng } from './prng.js';

/** Payload kinds: noise ~ compressed textures/audio (incompressible); pcm ~ raw audio; mesh ~ float vertex data. */
export type PayloadKind = 'noise' | 'pcm' | 'mesh';

/** Generation block: content repeats are whole blocks; random access costs at most one block. */
export const CONTENT_BLOCK_BYTES = 64 * 1024;

/** Share of noise blocks that repeat an earlier block of the same stream (dedupable structure). */
const REPEAT_BLOCK_SHARE = 0.03;

function fillBlock(kind: PayloadKind, seed: number, block: number, out: Uint8Array): void {
  let src = block;
  if (kind === 'noise' && block > 0) {
    const pick = mixSeed(seed, block, 0x5eed);
    if (pick / 4294967296 < REPEAT_BLOCK_SHARE) src = pick % block;
  }
  const rng = new Rng(mixSeed(seed, src, kind === 'noise' ? 1 : kind === 'pcm' ? 2 : 3));
  if (kind === 'noise') {
    rng.fill(out);
    return;
  }
  // pcm and mesh are computed on aligned typed arrays (little-endian host), then copied.
  const n = out.length;
  if (kind === 'pcm') {
    // Two sines (advanced by rotation, no per-sample Math.sin) plus noise, 16-bit: compresses to roughly 70-85 %.
    const f1 = 0.002 + rng.float() * 0.05;
    const f2 = 0.01 + rng.float() * 0.2;
    const amp = 2000 + rng.float() * 12000;
    const [c1, d1, c2, d2] = [Math.cos(f1), Math.sin(f1), Math.cos(f2), Math.sin(f2)];
    let [x1, y1, x2, y2] = [1, 0, 1, 0];
    const samples = pcmScratch;
    const count = n >> 1;
    for (let k = 0; k < count; k += 2) {
      const noise = rng.u32();
      for (let h = 0; h < 2 && k + h < count; h++) {
        const v = amp * y1 + (amp / 3) * y2 + ((noise >>> (h * 16)) & 0x3ff) - 512;
        samples[k + h] = v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v);
        const nx1 = x1 * c1 - y1 * d1;
        y1 = x1 * d1 + y1 * c1;
        x1 = nx1;
        const nx2 = x2 * c2 - y2 * d2;
        y2 = x2 * d2 + y2 * c2;
        x2 = nx2;
      }
    }
    out.set(new Uint8Array(samples.buffer, 0, count * 2));
    if (n % 2 === 1) out[n - 1] = 0;
    return;
  }
  // mesh: float32 random walks (positions, normals, uvs) rounded to a grid: partly compressible.
  let x = rng.float() * 100;
  const floats = meshScratch;
  const count = n >> 2;
  for (let k = 0; k < count; k++) {
    x += (rng.u32() / 4294967296 - 0.5) * 0.25;
    floats[k] = Math.round(x * 1024) / 1024;
  }
  out.set(new Uint8Array(floats.buffer, 0, count * 4));
  for (let k = count * 4; k < n; k++) out[k] = 0;
}

const pcmScratch = new Int16Array(CONTENT_BLOCK_BYTES / 2);
const meshScratch = new Float32Array(CONTENT_BLOCK_BYTES / 4);

/** Writes bytes [offset, offset + out.length) of stream (kind, seed) into `out`. */
export function fillPayload(kind: PayloadKind, seed: number, offset: number, out: Uint8Array): void {
  let done = 0;
  let scratch: Uint8Array | undefined;
  while (done < out.length) {
    const pos = offset + done;
    const block = Math.floor(pos / CONTENT_BLOCK_BYTES);
    const inBlock = pos - block * CONTENT_BLOCK_BYTES;
    const n = Math.min(CONTENT_BLOCK_BYTES - inBlock, out.length - done);
    if (inBlock === 0 && n === CONTENT_BLOCK_BYTES) {
      fillBlock(kind, seed, block, out.subarray(done, done + n));
    } else {
      scratch ??= new Uint8Array(CONTENT_BLOCK_BYTES);
      fillBlock(kind, seed, block, scratch);
      out.set(scratch.subarray(inBlock, inBlock + n), done);
    }
    done += n;
  }
}

// ---- text ----

export type TextStyle = 'ini' | 'lua' | 'csv' | 'json' | 'txt';

const WORDS = (
  'player enemy level spawn weapon damage health armor shield speed jump camera light shadow texture ' +
  'sound music volume render quality frame input mouse gamepad trigger quest item inventory dialog ' +
  'door key boss wave timer score bonus effect particle physics collision vehicle engine network ' +
  'lobby match server client region save load checkpoint menu option language subtitle'
).split(' ');

/** One line of a text file, fully determined by (style, seed). Ends with '\n'. */
export function textLine(style: TextStyle, seed: number): string {
  const r = new Rng(seed);
  const w = () => r.pick(WORDS);
  switch (style) {
    case 'ini':
      return r.chance(0.08) ? `\n[${w()}_${w()}]\n` : `${w()}_${w()} = ${r.chance(0.5) ? r.int(0, 5000) : w()}\n`;
    case 'lua': {
      const ind = '  '.repeat(r.int(0, 3));
      const k = r.int(0, 4);
      if (k === 0) return `${ind}local ${w()}_${w()} = ${r.int(0, 999)}\n`;
      if (k === 1) return `${ind}if ${w()}.${w()} > ${r.int(0, 99)} then ${w()}:${w()}(${w()}) end\n`;
      if (k === 2) return `${ind}function ${w()}_${w()}(${w()}, ${w()})\n`;
      if (k === 3) return `${ind}-- ${w()} ${w()} ${w()} ${w()}\n`;
      return `${ind}${w()}.${w()} = ${w()}.${w()} * ${(r.float() * 10).toFixed(2)}\n`;
    }
    case 'csv':
      return `${w()}_${w()}_${r.int(0, 9999)},"The ${w()} ${w()}s the ${w()}.","${w()} ${w()} ${w()}"\n`;
    case 'json':
      return `  "${w()}_${w()}": { "${w()}": ${r.int(0, 1000)}, "${w()}": "${w()}", "on": ${r.chance(0.5)} },\n`;
    default:
      return `${w()} ${w()} ${w()} ${w()} ${w()} ${w()}.\n`;
  }
}

// ---- machine code ----

/** x86-64-flavoured opcode table: [first byte, operand bytes]; weights by repetition. Call (0xe8) is special. */
const OPS: ReadonlyArray<readonly [number, number]> = [
  [0x48, 2], [0x48, 2], [0x48, 2], [0x48, 3], [0x89, 1], [0x89, 1], [0x8b, 1], [0x8b, 2], [0x8d, 2],
  [0x83, 2], [0x31, 1], [0x85, 1], [0x74, 1], [0x75, 1], [0xeb, 1], [0x0f, 5], [0x50, 0], [0x58, 0],
  [0x41, 2], [0xc3, 0], [0xe8, 4], [0xe8, 4], [0xe8, 4], [0xb8, 4], [0xc7, 6], [0x66, 3], [0xf3, 4],
];
const MODRM = [0x45, 0x4d, 0x55, 0x5d, 0xc0, 0xc1, 0xc7, 0xf8, 0x44, 0x24, 0x08, 0x10, 0x18];

/**
 * Writes one function's machine-code-like bytes. `addr` is its position in the code section; calls
 * encode a 32-bit displacement to `targetAddr(k)` so that moving functions changes call sites all
 * over the binary, as a real relink does. Exactly `out.length` bytes are written.
 */
export function fillFunction(seed: number, addr: number, targetAddr: (k: number) => number, out: Uint8Array): void {
  const r = new Rng(seed);
  let i = 0;
  const n = out.length;
  while (i < n) {
    const [op, extra] = OPS[r.u32() % OPS.length];
    if (i + 1 + extra > n) {
      out.fill(0xcc, i);
      return;
    }
    out[i] = op;
    if (op === 0xe8) {
      const disp = (targetAddr(r.u32()) - (addr + i + 5)) | 0;
      out[i + 1] = disp & 0xff;
      out[i + 2] = (disp >>> 8) & 0xff;
      out[i + 3] = (disp >>> 16) & 0xff;
      out[i + 4] = (disp >>> 24) & 0xff;
    } else {
      for (let k = 1; k <= extra; k++) {
        const v = r.u32();
        out[i + k] = k === 1 ? MODRM[v % MODRM.length] : (v & 7) < 3 ? 0 : (v & 7) < 6 ? (v >>> 8) & 0x0f : v >>> 24;
      }
    }
    i += 1 + extra;
  }
}
