// What a launcher shows for an install folder: the build, the image (dxf), bytes present, whether an update
// waits. Reads the state only (no lock: it never writes); asks the server for the release unless `offline`.
import type { HttpImageSourceOptions } from '@rockit/engine';
import { hasBit } from './chunk-stream.js';
import { ClientError } from './errors.js';
import { Remote } from './remote.js';
import { readChunks, readManifest, readState, type BuildRef } from './state.js';

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
}

export async function status(dir: string, opts: { offline?: boolean; http?: HttpImageSourceOptions } = {}): Promise<InstallStatus> {
  const state = await readState(dir);
  if (!state) throw new ClientError('not-installed', `${dir} holds no install`);
  let bytesPresent = state.build.rawBytes;
  if (state.phase === 'installing') {
    bytesPresent = 0;
    const m = await readManifest(dir, state.build.manifestId);
    const bits = m ? await readChunks(dir, state.build.manifestId, m.chunks.length) : undefined;
    if (m && bits) for (const f of m.files) if (f.type === 'file') for (const ci of f.chunks) if (hasBit(bits, ci)) bytesPresent += m.chunks[ci].rawSizeBytes;
  }
  const out: InstallStatus = { orgName: state.orgName, appName: state.appName, server: state.server, phase: state.phase, build: state.build, bytesPresent, bytesTotal: state.build.rawBytes, updateAvailable: null };
  if (opts.offline) return out;
  try {
    const remote = new Remote({ server: state.server, orgName: state.orgName, appName: state.appName, key: state.key, http: { attempts: 2, ...opts.http } });
    const r = await remote.release();
    out.latest = { buildId: r.buildId, buildName: r.buildName, dxfName: r.dxfName };
    out.updateAvailable = r.buildId !== state.build.buildId || r.dxfName !== state.build.dxfName;
    const p = r.patches.find((x) => x.fromBuildId === state.build.buildId);
    if (p && r.buildId !== state.build.buildId) out.patchBytes = p.sizeBytes;
  } catch (err) {
    out.offlineReason = (err as Error).message;
  }
  return out;
}
