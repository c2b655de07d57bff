// Opening a patch: a local folder, or an http(s) URL of such a folder (parts are downloaded to a
// private temporary folder first). Every part is checked against the pointer's size and SHA-256
// before anything is decoded, so a flipped byte or a truncation is named by part.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATCH_POINTER_FORMAT, PATCH_POINTER_NAME, PATCH_POINTER_VERSION } from './constants.js';
import { PatchCorruptError, PatchInputError, PatchUnsupportedError } from './errors.js';
import type { PatchPart, PatchPartRole, PatchPointer } from './format.js';

export interface OpenedPatch {
  pointer: PatchPointer;
  /** Local path of a part, after it has been verified; fetched on first use for URLs. */
  partPath(role: PatchPartRole): Promise<string>;
  close(): Promise<void>;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** Opens and validates a patch pointer. Throws PatchCorruptError / PatchUnsupportedError / PatchInputError. */
export async function openPatch(location: string): Promise<OpenedPatch> {
  let pointerText: string;
  let tempDir: string | undefined;
  if (isUrl(location)) {
    const res = await fetch(joinUrl(location, PATCH_POINTER_NAME));
    if (!res.ok) throw new PatchInputError(`cannot fetch ${PATCH_POINTER_NAME}: HTTP ${res.status}`);
    pointerText = await res.text();
    tempDir = await mkdtemp(join(tmpdir(), 'rockit-patch-'));
  } else {
    pointerText = await readFile(join(location, PATCH_POINTER_NAME), 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new PatchInputError(`cannot read ${join(location, PATCH_POINTER_NAME)}: ${err.code ?? err.message}`);
    });
  }
  const pointer = parsePointer(pointerText);
  const verified = new Map<PatchPartRole, string>();
  return {
    pointer,
    async partPath(role) {
      const hit = verified.get(role);
      if (hit) return hit;
      const part = pointer.parts.find((p) => p.role === role);
      if (!part) throw new PatchCorruptError(PATCH_POINTER_NAME, `no ${role} part`);
      let path: string;
      if (tempDir !== undefined) {
        path = join(tempDir, part.name);
        await download(joinUrl(location, part.name), path, part);
      } else {
        path = join(location, part.name);
      }
      await verifyPart(path, part);
      verified.set(role, path);
      return path;
    },
    async close() {
      if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
    },
  };
}

function joinUrl(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

async function download(url: string, path: string, part: PatchPart): Promise<void> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new PatchInputError(`cannot fetch ${part.name}: HTTP ${res.status}`);
  const fh = await open(path, 'w');
  let written = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      written += chunk.length;
      if (written > part.sizeBytes) throw new PatchCorruptError(part.name, `longer than the ${part.sizeBytes} bytes announced`);
      await fh.write(chunk);
    }
  } finally {
    await fh.close();
  }
}

async function verifyPart(path: string, part: PatchPart): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new PatchCorruptError(part.name, 'missing');
  if (st.size !== part.sizeBytes) throw new PatchCorruptError(part.name, `size ${st.size}, expected ${part.sizeBytes} (truncated or extended)`);
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  if (h.digest('hex') !== part.sha256) throw new PatchCorruptError(part.name, 'SHA-256 does not match the pointer');
}

const HEX64 = /^[0-9a-f]{64}$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function parsePointer(text: string): PatchPointer {
  const fail = (d: string) => new PatchCorruptError(PATCH_POINTER_NAME, d);
  let v: any;
  try {
    v = JSON.parse(text);
  } catch {
    throw fail('not JSON');
  }
  if (typeof v !== 'object' || v === null || v.format !== PATCH_POINTER_FORMAT) throw fail('not a ROCKIT patch pointer');
  if (v.formatVersion !== PATCH_POINTER_VERSION) throw new PatchUnsupportedError(PATCH_POINTER_NAME, `version ${String(v.formatVersion)}`);
  if (!HEX64.test(v.from?.manifestId) || !HEX64.test(v.to?.manifestId)) throw fail('bad manifest ids');
  if (!Array.isArray(v.parts)) throw fail('no parts');
  for (const p of v.parts) {
    if (!['manifest', 'data', 'baseManifest'].includes(p?.role)) throw fail('unknown part role');
    if (typeof p.name !== 'string' || !SAFE_NAME.test(p.name) || p.name === PATCH_POINTER_NAME) throw fail('bad part name');
    if (!Number.isSafeInteger(p.sizeBytes) || p.sizeBytes < 0 || !HEX64.test(p.sha256)) throw fail(`bad part ${p.name}`);
  }
  return v as PatchPointer;
}
