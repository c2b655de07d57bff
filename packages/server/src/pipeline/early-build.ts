// The image of a build, made while its tar is still being uploaded. A whole-tar PUT that starts at byte 0
// feeds its bytes to an engine build as they arrive; when mkraw later runs in this process for the same import
// and finds the same bytes (the SHA-256 the upload computed), it takes that image instead of reading the tar back
// from the blob store and building it again. Anything else costs only the early build, which is then dropped:
// a broken or replaced PUT, a tar the engine refuses (mkraw builds it again and reports why), mkraw running on
// another node, an early build nobody takes within `keepMs`. The upload never fails because of it.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { buildImage, type BuildResult, type InputLimits } from '@rockit/engine';

import { SCRATCH_PREFIX, holdWorkFolder } from './work-sweep.js';

export interface EarlyBuildsOptions {
  /** mkraw's work folder: the early image must be on the same disk as mkraw's scratch. */
  workDir: string;
  limits?: Partial<InputLimits>;
  /** Engine codec threads (default: all cores). */
  threads?: number;
  /** Early builds running at once; a PUT beyond this uploads as before (default 1). */
  maxRunning?: number;
  /** How long a finished early build waits for its mkraw before it is dropped (default 10 minutes). */
  keepMs?: number;
}

/** The bytes of one PUT, fed to its early build. Never throws: a failed build just stops taking bytes. */
export interface EarlyFeed {
  /** Resolves when the build has taken the bytes (or has stopped): the PUT's own pace, bounded by the build's. */
  write(chunk: Buffer): Promise<void>;
  /** The PUT stored the whole tar with this SHA-256: the build may finish and wait for its mkraw. */
  finish(sha256: string): void;
  /** The PUT did not complete the tar: the build stops and its folder goes. */
  abort(): void;
}

/** An early image handed to mkraw; `release()` removes its folder once mkraw is done with it. */
export interface EarlyImage {
  imageDir: string;
  result: BuildResult;
  release(): Promise<void>;
}

interface Entry {
  folder: string;
  input: PassThrough;
  /** The build's result, or undefined when it failed or was stopped (its folder is then already gone). */
  done: Promise<BuildResult | undefined>;
  sha256?: string;
  expiry?: NodeJS.Timeout;
  unhold: () => void;
}

/** Bytes buffered between the PUT and its early build before the PUT waits. */
const FEED_BUFFER_BYTES = 8 * 1024 * 1024;

export class EarlyBuilds {
  private readonly byTask = new Map<string, Entry>();
  /** Builds still taking bytes or finishing; a dropped one leaves at once (its remains stop by themselves). */
  private readonly running = new Set<Entry>();
  /** Early images taken by mkraw (tests and operators' curiosity). */
  taken = 0;

  constructor(private readonly opts: EarlyBuildsOptions) {}

  /** Starts the early build of the upload task's tar, or returns undefined when too many are running. */
  start(taskName: string): EarlyFeed | undefined {
    this.drop(taskName); // a new whole PUT replaces the bytes an older one fed
    if (this.running.size >= (this.opts.maxRunning ?? 1)) return undefined;
    const folder = join(this.opts.workDir, `${SCRATCH_PREFIX}early-${randomBytes(6).toString('hex')}`);
    const unhold = holdWorkFolder(folder);
    const input = new PassThrough({ highWaterMark: FEED_BUFFER_BYTES });
    input.on('error', () => undefined); // a dropped build's stream: the build sees the end of its input
    const done = buildImage({
      input,
      outDir: join(folder, 'image'),
      // The depot stores it durably: its packs reach the disk while the upload still runs, not when mkraw stores them.
      syncPacks: true,
      ...(this.opts.limits ? { limits: this.opts.limits } : {}),
      ...(this.opts.threads !== undefined ? { threads: this.opts.threads } : {}),
    }).then(
      (result) => result,
      async () => {
        input.destroy();
        await rm(folder, { recursive: true, force: true }).catch(() => undefined);
        unhold();
        return undefined;
      },
    );
    const entry: Entry = { folder, input, done, unhold };
    this.running.add(entry);
    void done.finally(() => this.running.delete(entry));
    this.byTask.set(taskName, entry);
    const stopped = done.then(() => undefined);
    return {
      write: async (chunk) => {
        if (input.destroyed || input.writableEnded) return;
        if (input.write(chunk)) return;
        await Promise.race([new Promise((resolve) => input.once('drain', resolve)), stopped]);
      },
      finish: (sha256) => {
        if (this.byTask.get(taskName) !== entry) return;
        entry.sha256 = sha256;
        input.end();
        // Kept for its mkraw from the moment it is built.
        void done.then(() => {
          if (this.byTask.get(taskName) !== entry) return;
          entry.expiry = setTimeout(() => {
            if (this.byTask.get(taskName) === entry) this.drop(taskName);
          }, this.opts.keepMs ?? 10 * 60_000);
          entry.expiry.unref();
        });
      },
      abort: () => {
        if (this.byTask.get(taskName) === entry) this.drop(taskName);
      },
    };
  }

  /**
   * The early image of the import's upload when it was built from exactly the bytes with `sha256` (waits for a
   * build still running); otherwise undefined, and any early build of the task is dropped.
   */
  async take(taskName: string, sha256: string | null): Promise<EarlyImage | undefined> {
    const entry = this.byTask.get(taskName);
    if (!entry) return undefined;
    this.byTask.delete(taskName);
    clearTimeout(entry.expiry);
    if (sha256 === null || entry.sha256 !== sha256) {
      await this.discard(entry);
      return undefined;
    }
    const result = await entry.done;
    if (!result) return undefined;
    this.taken++;
    return {
      imageDir: join(entry.folder, 'image'),
      result,
      release: async () => {
        await rm(entry.folder, { recursive: true, force: true }).catch(() => undefined);
        entry.unhold();
      },
    };
  }

  /** Stops every early build and removes its folder (server shutdown). */
  async close(): Promise<void> {
    const entries = [...this.byTask.values()];
    this.byTask.clear();
    await Promise.all(entries.map((e) => this.discard(e)));
  }

  private drop(taskName: string): void {
    const entry = this.byTask.get(taskName);
    if (!entry) return;
    this.byTask.delete(taskName);
    void this.discard(entry);
  }

  private async discard(entry: Entry): Promise<void> {
    clearTimeout(entry.expiry);
    this.running.delete(entry);
    entry.input.destroy(new Error('early build dropped'));
    const result = await entry.done;
    if (!result) return; // the failure path already removed the folder
    await rm(entry.folder, { recursive: true, force: true }).catch(() => undefined);
    entry.unhold();
  }
}
