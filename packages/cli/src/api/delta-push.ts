// The client half of a delta push (issue 13 item 4): chunk the build with the engine's chunker, ask
// the server which chunks the app's kept builds hold (POST /be/v1/builds/chunks), and write a delta
// that carries only the others. The delta file is kept in ~/.config/rockit/deltas/ (a 0700 folder,
// 0600 files) until its upload is complete, so `rockit push --resume` can send the rest of it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { planChunkIds, scanBuild, writeDelta, type DeltaPlan, type TarWriteEntry, type WriteDeltaResult } from '@rockit/engine';
import { ApiError, type ApiClient } from './client.js';
import { credentialsPath } from './credentials.js';
import { TaskFailedError } from './follow-tasks.js';
import type { AppDto, SuccessBody } from '@rockit/contract';

/** Ids per POST /be/v1/builds/chunks (the server's limit). */
export const CHUNK_IDS_PER_REQUEST = 10_000;

/** Task error codes after which a full push is made instead (the server could not use the delta). */
const REFUSED_DELTA = new Set(['unknown-chunk', 'not-a-delta']);

/** Folder of kept delta files: next to credentials.json. */
export function deltasDir(env: NodeJS.ProcessEnv): string {
  return path.join(path.dirname(credentialsPath(env)), 'deltas');
}

export interface PlannedDelta {
  plan: DeltaPlan;
  known: Set<string>;
  /** Distinct chunk ids of the build. */
  ids: number;
}

/**
 * Whether and how to push `entries` as a delta: null when the app keeps no build (nothing to
 * reference), when the server knows none of the build's chunks, or when it does not offer the
 * chunks endpoint (an older server): then the whole tar is sent. `onScan` reports scanned bytes.
 */
export async function planDelta(client: ApiClient, appName: string, entries: readonly TarWriteEntry[], onScan?: (bytes: number) => void): Promise<PlannedDelta | null> {
  // A first push has nothing to reference: skip the chunking. (A key without apps.read cannot tell: it chunks and asks.)
  // Any other refusal (no such app...) is left to the submission, which reports it.
  const app = await client.get<SuccessBody & { app: AppDto }>(`/be/v1/apps/${encodeURIComponent(appName)}`).then(
    (r) => r.app,
    (err: unknown) => {
      if (err instanceof ApiError) return err.status === 403 ? null : undefined;
      throw err;
    },
  );
  if (app === undefined || (app !== null && !(app.builds ?? []).some((b) => typeof b.buildId === 'number'))) return null;
  const plan = await scanBuild(entries, onScan ? { onProgress: onScan } : {});
  const ids = planChunkIds(plan);
  const known = new Set<string>();
  try {
    for (let i = 0; i < ids.length; i += CHUNK_IDS_PER_REQUEST) {
      const res = await client.post<SuccessBody & { known?: unknown }>('/be/v1/builds/chunks', { appName, ids: ids.slice(i, i + CHUNK_IDS_PER_REQUEST) });
      if (Array.isArray(res.known)) for (const id of res.known) if (typeof id === 'string') known.add(id);
    }
  } catch (err) {
    // No such endpoint (an older server) or any refusal but the credentials': push the whole build.
    if (err instanceof ApiError && err.status !== 401 && err.status !== 403) return null;
    throw err;
  }
  return known.size === 0 ? null : { plan, known, ids: ids.length };
}

/** Writes the delta file of task `taskName` (0600, in a 0700 folder) and returns its path and figures. */
export async function writeDeltaFile(env: NodeJS.ProcessEnv, taskName: string, d: PlannedDelta): Promise<WriteDeltaResult & { file: string }> {
  const dir = deltasDir(env);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const file = path.join(dir, `${taskName.replace(/[^A-Za-z0-9_-]/g, '_')}.rkdl`);
  return { ...(await writeDelta(d.plan, d.known, file)), file };
}

/** Best effort: the delta was uploaded (or given up). */
export async function removeDeltaFile(file: string | undefined): Promise<void> {
  if (file) await fs.rm(file, { force: true }).catch(() => undefined);
}

/** The server took the delta upload but could not build from it: the CLI pushes the whole build instead. */
export function isRefusedDelta(err: unknown): err is TaskFailedError {
  if (!(err instanceof TaskFailedError) || err.task.type !== 'dltar') return false;
  const code = (err.task.error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && REFUSED_DELTA.has(code);
}

/** An older server that does not know the `delta` field of POST /be/v1/builds. */
export function isDeltaUnsupported(err: unknown): boolean {
  return err instanceof ApiError && err.error === 'invalid-param' && err.param === 'delta';
}
