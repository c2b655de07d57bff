// What a launcher shows for an install folder: the build, the image (dxf), bytes present, whether an update
// waits, and whether an update was interrupted. An interrupted update is settled first (the folder's swap is
// recovered and the state says which build it holds) when no other launcher works on the folder; the state is
// otherwise only read. Asks the server for the release unless `offline`.
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { HttpImageSourceOptions } from '@rockit/engine';
import { hasBit } from './chunk-stream.js';
import { ClientError } from './errors.js';
import { Remote } from './remote.js';
import { PATCH_DIR, lockFolder, readChunks, readManifest, readState, stateDir, type BuildRef, type InstallState } from './state.js';
import { recoverMissingFolder, settleInterrupted } from './update.js';
import { readUpdateCache } from './update-chunks.js';

export interface InterruptedUpdate {
  /** How the update was downloading: the changed chunks of the new image, or a patch. */
  via: 'chunks' | 'patch';
  /** The build it was going to (chunks only: a patch's target is known once its parts are read). */
  to?: { buildId: number; buildName: string; dxfName: string };
  /** Stored bytes already downloaded (kept: `rockit update` does not fetch them again). */
  bytesDownloaded: number;
  /** Stored bytes the download needs in all (chunks only). */
  bytesNeeded?: number;
  message: string;
}

export interface InstallStatus {
  orgName: string;
  appName: string;
  server: string;
  phase: 'installing' | 'installed';
  build: BuildRef;
  /** Raw bytes of the build's files present on disk (all of them once installed). */
  bytesPresent: number;
  bytesTotal: number;
  /** true / false, or null when the server could not be asked. */
  updateAvailable: boolean | null;
  latest?: { buildId: number; buildName: string; dxfName: string };
  /** Size of the patch from the installed build, when the release offers one. */
  patchBytes?: number;
  /** Why the server could not be asked. */
  offlineReason?: string;
  /** An update that stopped before it finished (killed, failed, paused): `rockit update` resumes it. */
  updateInterrupted?: InterruptedUpdate;
  /**
   * What this call settled after a killed update: 'kept' (the folder holds the installed build; the update's
   * download is kept), 'finished' (the swap to the new build had begun: it was completed).
   */
  settled?: 'kept' | 'finished';
  /** Another launcher (pid) works on the folder now: nothing was settled. */
  busy?: string;
}

/** Whether a killed update may have left something to settle. */
async function unsettled(dir: string, state: InstallState): Promise<boolean> {
  if (state.updating) return true;
  const abs = resolve(dir);
  for (const p of [`${abs}.rockit-journal`, `${abs}.rockit-new`, `${abs}.rockit-old`]) if (await stat(p).catch(() => undefined)) return true;
  return false;
}

async function interrupted(dir: string, state: InstallState): Promise<InterruptedUpdate | undefined> {
  const cache = await readUpdateCache(dir);
  if (cache && cache.info.to.manifestId !== state.build.manifestId) {
    const { to } = cache.info;
    return {
      via: 'chunks',
      to: { buildId: to.buildId, buildName: to.buildName, dxfName: to.dxfName },
      bytesDownloaded: cache.downloadedStoredBytes,
      bytesNeeded: cache.info.neededStoredBytes,
      message: `update to build ${to.buildName} interrupted (${cache.downloadedStoredBytes} of ${cache.info.neededStoredBytes} bytes downloaded): run rockit update to finish`,
    };
  }
  const pdir = join(stateDir(dir), PATCH_DIR);
  const parts = await readdir(pdir).catch(() => [] as string[]);
  let bytes = 0;
  for (const p of parts) bytes += (await stat(join(pdir, p)).catch(() => undefined))?.size ?? 0;
  if (parts.length === 0) return undefined;
  return { via: 'patch', bytesDownloaded: bytes, message: `update by patch interrupted (${bytes} bytes downloaded): run rockit update to finish` };
}

export async function status(dir: string, opts: { offline?: boolean; http?: HttpImageSourceOptions } = {}): Promise<InstallStatus> {
  await recoverMissingFolder(dir);
  let state = await readState(dir);
  if (!state) throw new ClientError('not-installed', `${dir} holds no install`);
  let settled: InstallStatus['settled'];
  let busy: string | undefined;
  if (state.phase === 'installed' && (await unsettled(dir, state))) {
    const lock = await lockFolder(dir).catch((err: unknown) => {
      if (err instanceof ClientError && err.code === 'locked') busy = err.message;
      else throw err;
      return undefined;
    });
    if (lock) {
      try {
        const fresh = await readState(dir);
        if (fresh) ({ state, settled } = await settleInterrupted(dir, fresh));
      } finally {
        await lock.release();
      }
    }
  }
  let bytesPresent = state.build.rawBytes;
  if (state.phase === 'installing') {
    bytesPresent = 0;
    const m = await readManifest(dir, state.build.manifestId);
    const bits = m ? await readChunks(dir, state.build.manifestId, m.chunks.length) : undefined;
    if (m && bits) for (const f of m.files) if (f.type === 'file') for (const ci of f.chunks) if (hasBit(bits, ci)) bytesPresent += m.chunks[ci].rawSizeBytes;
  }
  const out: InstallStatus = { orgName: state.orgName, appName: state.appName, server: state.server, phase: state.phase, build: state.build, bytesPresent, bytesTotal: state.build.rawBytes, updateAvailable: null };
  const stopped = state.phase === 'installed' && !busy ? await interrupted(dir, state) : undefined;
  if (stopped) out.updateInterrupted = stopped;
  if (settled) out.settled = settled;
  if (busy) out.busy = busy;
  if (opts.offline) return out;
  const st = state;
  try {
    const remote = new Remote({ server: st.server, orgName: st.orgName, appName: st.appName, key: st.key, http: { attempts: 2, ...opts.http } });
    const r = await remote.release();
    out.latest = { buildId: r.buildId, buildName: r.buildName, dxfName: r.dxfName };
    out.updateAvailable = r.buildId !== st.build.buildId || r.dxfName !== st.build.dxfName;
    const p = r.patches.find((x) => x.fromBuildId === st.build.buildId);
    if (p && r.buildId !== st.build.buildId) out.patchBytes = p.sizeBytes;
  } catch (err) {
    out.offlineReason = (err as Error).message;
  }
  return out;
}
