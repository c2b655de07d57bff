/**
 * A round trip through a blob store (or an origin's store): write a random probe object, read it
 * back whole and by range, compare, delete it, confirm it is gone. Used at start-up for the depot
 * and to report a deployment's `status`/`message` (api.md §9.1).
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobStore } from './blob-store.js';
import { isStorageError, type StorageErrorCode } from './storage-error.js';

export interface SelfCheckResult {
  ok: boolean;
  /** One line for people: what worked, or which step failed and why (never a secret). */
  message: string;
  /** Wall time of the whole check, milliseconds. */
  ms: number;
  /** The failure's code when a store operation failed. */
  code?: StorageErrorCode;
}

/** Folder of probe objects; each check uses its own random name, so concurrent checks never collide. */
export const SELF_CHECK_PREFIX = 'rockit-self-check/';
const PROBE_BYTES = 4096;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Never throws: every failure becomes `{ ok: false }`. The probe is removed even when a read fails. */
export async function selfCheck(store: BlobStore): Promise<SelfCheckResult> {
  const started = performance.now();
  const key = `${SELF_CHECK_PREFIX}${randomBytes(12).toString('hex')}.probe`;
  const probe = randomBytes(PROBE_BYTES);
  const location = store.describe().location;
  const done = (ok: boolean, message: string, code?: StorageErrorCode): SelfCheckResult => ({
    ok,
    message,
    ms: Math.round(performance.now() - started),
    ...(code ? { code } : {}),
  });
  let step = 'write';
  let written = false;
  try {
    await store.put(key, probe, { expectedSizeBytes: PROBE_BYTES });
    written = true;
    step = 'read';
    const whole = await readAll((await store.get(key)).body);
    if (!whole.equals(probe)) return done(false, `${location}: the probe object read back differs from what was written`);
    step = 'range read';
    const part = await readAll((await store.get(key, { start: 100, end: 199 })).body);
    if (!part.equals(probe.subarray(100, 200))) return done(false, `${location}: a range read of the probe object returned other bytes`);
    step = 'delete';
    await store.delete(key);
    written = false;
    if ((await store.head(key)) !== null) return done(false, `${location}: the probe object is still there after delete`);
    return done(true, `${location}: write, read, range read and delete work`);
  } catch (err) {
    const code = isStorageError(err) ? err.code : undefined;
    const reason = isStorageError(err) ? err.message : 'unexpected error';
    return done(false, `${step} failed: ${reason}`, code);
  } finally {
    if (written) await store.delete(key).catch(() => undefined);
  }
}
