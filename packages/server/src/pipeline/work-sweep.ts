// mkraw's local work folder (`<dataDir>/work/mkraw`): scratch folders `mkraw-NNNN-<random>` of running
// conversions and the image cache `image-cache/<org>/<app>/…`. A process killed mid-mkraw leaves its
// scratch folder behind, and an app or org that is deleted leaves its cache: `sweepWorkFolder` removes
// both, never touching a folder that a running task of this process holds (`holdWorkFolder`).
// Each node of a cluster has its own data folder, so a node only ever sweeps its own work.
import { readdir, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';

/** Folders in use by running tasks of this process (a count each: two holders may share one). */
const held = new Map<string, number>();

/** Marks `path` as in use until the returned function is called (call it once, in a `finally`). */
export function holdWorkFolder(path: string): () => void {
  held.set(path, (held.get(path) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (held.get(path) ?? 1) - 1;
    if (n <= 0) held.delete(path);
    else held.set(path, n);
  };
}

/** Whether `path`, a folder inside it or a folder above it is held. */
function isHeld(path: string): boolean {
  for (const p of held.keys()) {
    if (p === path || p.startsWith(path + sep) || path.startsWith(p + sep)) return true;
  }
  return false;
}

/** Prefix of mkraw's scratch folders inside the work folder. */
export const SCRATCH_PREFIX = 'mkraw-';
/** The image cache's folder inside the work folder. */
export const IMAGE_CACHE_FOLDER = 'image-cache';

export interface LiveApps {
  /** Names of the organizations that exist. */
  orgs: ReadonlySet<string>;
  /** `org/app` of the apps that exist. */
  apps: ReadonlySet<string>;
}

export interface SweepResult {
  /** Folders removed, relative to the work folder. */
  removed: string[];
}

const names = (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);

/**
 * Removes from `workDir` (mkraw's work folder) every scratch folder no running task of this process
 * holds, and the cache of every org and app that `live()` does not list. The folders are listed
 * before `live()` is asked, so an app created meanwhile is never mistaken for a deleted one.
 * Best effort: a folder that cannot be removed is left for the next sweep.
 */
export async function sweepWorkFolder(workDir: string, live: () => Promise<LiveApps>): Promise<SweepResult> {
  const removed: string[] = [];
  const remove = async (rel: string): Promise<void> => {
    const abs = join(workDir, rel);
    if (isHeld(abs)) return;
    try {
      await rm(abs, { recursive: true, force: true });
      removed.push(rel);
    } catch {
      /* left for the next sweep */
    }
  };
  for (const name of await names(workDir)) {
    if (name.startsWith(SCRATCH_PREFIX)) await remove(name);
  }
  const cacheRoot = join(workDir, IMAGE_CACHE_FOLDER);
  const cached: Array<{ org: string; apps: string[] }> = [];
  for (const org of await names(cacheRoot)) cached.push({ org, apps: await names(join(cacheRoot, org)) });
  if (cached.length === 0) return { removed };
  const alive = await live();
  for (const { org, apps } of cached) {
    if (!alive.orgs.has(org)) {
      await remove(join(IMAGE_CACHE_FOLDER, org));
      continue;
    }
    for (const app of apps) if (!alive.apps.has(`${org}/${app}`)) await remove(join(IMAGE_CACHE_FOLDER, org, app));
  }
  return { removed };
}

/** Drops the image cache of an app (or, without `appName`, of a whole org) once it is deleted. */
export async function dropImageCache(workDir: string, orgName: string, appName?: string): Promise<void> {
  const dir = appName === undefined ? join(workDir, IMAGE_CACHE_FOLDER, orgName) : join(workDir, IMAGE_CACHE_FOLDER, orgName, appName);
  if (isHeld(dir)) return;
  await rm(dir, { recursive: true, force: true });
}
