// The install state folder `<dir>/.rockit/` (docs/FORMATS.md "Install state"): what is installed, from where,
// the installed build's manifest (so an update never downloads the base manifest again), which chunks are
// present while an install runs, and the lock that keeps two launchers off one folder. Every file is written
// to a temporary name and renamed; nothing is fsynced (the state protects against killed processes, like
// extract's state file; a power cut may cost a re-download, never a wrong byte: chunks are verified on read).
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalManifestId, decodeManifestCanonical, encodeManifestCanonical, type Manifest } from '@rockit/engine';
import { ClientError } from './errors.js';

export const STATE_DIR = '.rockit';
export const STATE_FILE = 'install.json';
export const STATE_FORMAT = 'rockit-install';
export const STATE_VERSION = 1;
/** The installed build's manifest; the next build's during an update. */
export const MANIFEST_FILE = 'manifest.rkmc';
export const NEXT_MANIFEST_FILE = 'manifest-next.rkmc';
/** Patch parts being downloaded for an update (resumable). */
export const PATCH_DIR = 'patch';
const CHUNKS_FILE = 'chunks.bin';
const LOCK_FILE = 'lock';
/** Presence bitmap header: magic "RKCP", version u16 = 1, reserved u16, chunk count u32, canonical manifest id (32). */
const CHUNKS_MAGIC = 0x50434b52; // "RKCP" little-endian
const CHUNKS_HEADER_BYTES = 44;

/** The build a state refers to. */
export interface BuildRef {
  buildId: number;
  buildName: string;
  dxfName: string;
  /** Image folder, relative to the file base (release.json's image.path). */
  imagePath: string;
  /** Canonical manifest id (hex SHA-256, as in patches). */
  manifestId: string;
  /** Sum of regular file sizes. */
  rawBytes: number;
  /** Sum of stored chunk sizes (what a full download moves). */
  storedBytes: number;
}

export interface InstallState {
  format: typeof STATE_FORMAT;
  formatVersion: typeof STATE_VERSION;
  server: string;
  orgName: string;
  appName: string;
  /** The download key, when the app has keys (file mode 0600). */
  key?: string;
  /** 'installing': chunks.bin says what is present; 'installed': every file is complete and verified. */
  phase: 'installing' | 'installed';
  build: BuildRef;
  /** Set while an update to this build runs: after a crash, the folder is `build` or `updating` (never a mix). */
  updating?: BuildRef;
  /** Download rate measured by the last run (bytes per second): a resumed install decides its preload at once. */
  measuredBytesPerSecond?: number;
  /** Remembered --limit-rate (bytes per second) so that a resumed install keeps it. */
  limitRateBytesPerSecond?: number;
}

export const stateDir = (dir: string) => join(dir, STATE_DIR);

let tmpSeq = 0;

async function writeAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++tmpSeq}`;
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  } catch (err) {
    // e.g. a full disk: no half-written temporary file is left behind; the previous version stays.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Reads the state; undefined when the folder holds none. Throws ClientError on a state of another format. */
export async function readState(dir: string): Promise<InstallState | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDir(dir), STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let v: any;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ClientError('not-installed', `${join(stateDir(dir), STATE_FILE)} is damaged (not JSON): reinstall`);
  }
  if (v?.format !== STATE_FORMAT || v.formatVersion !== STATE_VERSION || (v.phase !== 'installing' && v.phase !== 'installed') || typeof v.build?.manifestId !== 'string') {
    throw new ClientError('not-installed', `${join(stateDir(dir), STATE_FILE)} is not an install state this version understands`);
  }
  return v as InstallState;
}

export async function writeState(dir: string, s: InstallState): Promise<void> {
  await mkdir(stateDir(dir), { recursive: true });
  await writeAtomic(join(stateDir(dir), STATE_FILE), JSON.stringify(s, null, 2) + '\n', 0o600);
}

/** Saves a build's manifest (canonical encoding, named by its id inside the file). */
export async function writeManifest(dir: string, m: Manifest, name = MANIFEST_FILE): Promise<string> {
  const enc = encodeManifestCanonical(m);
  await mkdir(stateDir(dir), { recursive: true });
  await writeAtomic(join(stateDir(dir), name), enc);
  return canonicalManifestId(enc);
}

/** Reads the saved manifest and checks it is the one with `id`; undefined when missing or not matching. */
export async function readManifest(dir: string, id: string, name = MANIFEST_FILE): Promise<Manifest | undefined> {
  let enc: Buffer;
  try {
    enc = await readFile(join(stateDir(dir), name));
  } catch {
    return undefined;
  }
  if (canonicalManifestId(enc) !== id) return undefined;
  return decodeManifestCanonical(enc, (d) => new ClientError('not-installed', `saved manifest is damaged: ${d}`));
}

/** Presence of each chunk (index in stream order) of the build being installed (`file`: another bitmap of the state folder). */
export async function readChunks(dir: string, manifestId: string, chunkCount: number, file = CHUNKS_FILE): Promise<Uint8Array | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(join(stateDir(dir), file));
  } catch {
    return undefined;
  }
  const bytes = Math.ceil(chunkCount / 8);
  if (buf.length !== CHUNKS_HEADER_BYTES + bytes || buf.readUInt32LE(0) !== CHUNKS_MAGIC || buf.readUInt16LE(4) !== 1) return undefined;
  if (buf.readUInt32LE(8) !== chunkCount || buf.subarray(12, 44).toString('hex') !== manifestId) return undefined;
  return new Uint8Array(buf.subarray(CHUNKS_HEADER_BYTES));
}

/** The manifest id a presence bitmap belongs to (undefined when there is none or it is not one). */
export async function chunksManifestId(dir: string, file = CHUNKS_FILE): Promise<string | undefined> {
  const buf = await readFile(join(stateDir(dir), file)).catch(() => undefined);
  if (!buf || buf.length < CHUNKS_HEADER_BYTES || buf.readUInt32LE(0) !== CHUNKS_MAGIC) return undefined;
  return buf.subarray(12, 44).toString('hex');
}

export async function writeChunks(dir: string, manifestId: string, chunkCount: number, bits: Uint8Array, file = CHUNKS_FILE): Promise<void> {
  const buf = Buffer.alloc(CHUNKS_HEADER_BYTES + bits.length);
  buf.writeUInt32LE(CHUNKS_MAGIC, 0);
  buf.writeUInt16LE(1, 4);
  buf.writeUInt32LE(chunkCount, 8);
  Buffer.from(manifestId, 'hex').copy(buf, 12);
  buf.set(bits, CHUNKS_HEADER_BYTES);
  await writeAtomic(join(stateDir(dir), file), buf);
}

export async function removeChunks(dir: string): Promise<void> {
  await rm(join(stateDir(dir), CHUNKS_FILE), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface Lock {
  release(): Promise<void>;
}

/**
 * Takes the folder's lock (`.rockit/lock`, created exclusively, holding our pid). A lock whose process is gone
 * (killed launcher) is taken over. Throws ClientError 'locked' when another live process holds it.
 */
export async function lockFolder(dir: string): Promise<Lock> {
  await mkdir(stateDir(dir), { recursive: true });
  const path = join(stateDir(dir), LOCK_FILE);
  const token = `${process.pid} ${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16)}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(token);
      await fh.close();
      return {
        async release() {
          const now = await readFile(path, 'utf8').catch(() => '');
          if (now === token) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const held = await readFile(path, 'utf8').catch(() => '');
    const pid = Number(held.split(' ')[0]);
    if (held !== '' && Number.isSafeInteger(pid) && pid > 0 && alive(pid) && pid !== process.pid) {
      throw new ClientError('locked', `another launcher (pid ${pid}) is working on ${dir}; wait for it or stop it`);
    }
    // Stale (its process is gone) or half-written: remove it only if it is still the one we read.
    const again = await readFile(path, 'utf8').catch(() => '');
    if (again === held) await rm(path, { force: true });
  }
  throw new ClientError('locked', `cannot take the lock of ${dir}`);
}
