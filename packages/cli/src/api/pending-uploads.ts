// Uploads this machine started and has not finished, so `rockit push --resume <task>` can go on
// after the command ended (a server restart outlasted its retries, Ctrl-C, a lost terminal).
//
// Decided: the upload URL's one-time token is kept here, next to the login (same folder, mode
// 0600 in a 0700 folder), rather than fetched again from the server: the token is the upload's
// only credential and the server keeps only its hash, so no endpoint can hand it back. A push
// records its upload right after `POST /be/v1/builds` and forgets it once the upload is complete
// or cancelled. The record also fingerprints the source (paths, sizes, modification times), so a
// resume refuses a build that changed since the bytes already sent.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { credentialsPath } from './credentials.js';

export interface PendingUpload {
  taskName: string;
  /** The API server (credentials' `server`), for a check that the resume goes to the same one. */
  server: string;
  orgName: string;
  appName: string;
  buildName?: string;
  /** The push's --ignore patterns (a resume lists the folder the same way). */
  ignore?: string[];
  /** Absolute upload URL with its token. */
  url: string;
  method: string;
  /** Absolute path of the folder or tar pushed. */
  source: string;
  sizeBytes: number;
  /** A delta push: the delta file sent (kept until the upload is complete) and the size of the build's tar it stands for. */
  delta?: { file: string; buildSizeBytes: number; chunkIds?: number; newChunks?: number };
  /** sha256 over the source's entries (path, size, mtime) or the tar's size and mtime. */
  fingerprint: string;
  createdMs: number;
}

interface PendingFile {
  version: 1;
  uploads: Record<string, PendingUpload>;
}

/** Uploads kept longer than this are dropped when the file is next written (the server's URL expired anyway). */
const KEEP_MS = 31 * 24 * 3600 * 1000;
/** At most this many records (oldest dropped first): the file stays small. */
const MAX_RECORDS = 100;

/** Path of the pending-uploads file: next to credentials.json. */
export function pendingUploadsPath(env: NodeJS.ProcessEnv): string {
  return path.join(path.dirname(credentialsPath(env)), 'uploads.json');
}

async function readAll(file: string): Promise<PendingFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, uploads: {} };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<PendingFile>;
    if (parsed.version === 1 && parsed.uploads && typeof parsed.uploads === 'object') return { version: 1, uploads: parsed.uploads };
  } catch {
    /* unreadable: start afresh below */
  }
  return { version: 1, uploads: {} };
}

async function writeAll(file: string, data: PendingFile, nowMs: number): Promise<void> {
  const kept = Object.values(data.uploads)
    .filter((u) => nowMs - u.createdMs < KEEP_MS)
    .sort((a, b) => b.createdMs - a.createdMs)
    .slice(0, MAX_RECORDS);
  const out: PendingFile = { version: 1, uploads: Object.fromEntries(kept.map((u) => [u.taskName, u])) };
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.uploads.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(JSON.stringify(out, null, 2) + '\n', 'utf8');
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file).catch(async (err: unknown) => {
    await fs.rm(tmp, { force: true });
    throw err;
  });
}

export async function savePendingUpload(env: NodeJS.ProcessEnv, upload: PendingUpload): Promise<void> {
  const file = pendingUploadsPath(env);
  const data = await readAll(file);
  data.uploads[upload.taskName] = upload;
  await writeAll(file, data, upload.createdMs);
}

export async function findPendingUpload(env: NodeJS.ProcessEnv, taskName: string): Promise<PendingUpload | null> {
  const data = await readAll(pendingUploadsPath(env));
  return Object.prototype.hasOwnProperty.call(data.uploads, taskName) ? (data.uploads[taskName] ?? null) : null;
}

/** Forgets an upload (complete, cancelled or expired). Best effort: a failure changes nothing the user sees. */
export async function forgetPendingUpload(env: NodeJS.ProcessEnv, taskName: string, nowMs: number): Promise<void> {
  try {
    const file = pendingUploadsPath(env);
    const data = await readAll(file);
    if (!Object.prototype.hasOwnProperty.call(data.uploads, taskName)) return;
    delete data.uploads[taskName];
    await writeAll(file, data, nowMs);
  } catch {
    /* best effort */
  }
}

/** A fingerprint of what is sent: each entry's name, type, size and mtime (folder), or the tar's size and mtime. */
export function fingerprint(parts: ReadonlyArray<{ name: string; type: string; size: number; mtime: number }>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.type}\0${p.name}\0${p.size}\0${p.mtime}\n`);
  return h.digest('hex');
}
