import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ApiError, type ApiClient } from '../api/client.js';
import { connect, parsePositiveInt, processContext, runAction, withConnectionOptions, type CliContext, type ConnectionOptions } from '../api/context.js';
import { followPipeline } from '../api/follow-tasks.js';
import { packTar, tarSize, type TarWriteEntry } from '@rockit/engine';
import { isDeltaUnsupported, isRefusedDelta, planDelta, removeDeltaFile, writeDeltaFile, type PlannedDelta } from '../api/delta-push.js';
import { listFolder, skipBytes } from '../api/tar-pack.js';
import { findPendingUpload, fingerprint, forgetPendingUpload, savePendingUpload, type PendingUpload } from '../api/pending-uploads.js';
import { applyIgnore, checkFolderEntries, checkTarFile, readIgnoreFile } from '../api/precheck.js';
import { uploadResumable, uploadStatus } from '../api/upload.js';
import type { AppDto, SubmitBuildAnswer, SuccessBody, TaskDto } from '@rockit/contract';
import { createProgress, formatBytes } from '../progress.js';

interface PushOptions extends ConnectionOptions {
  name?: string;
  wait: boolean;
  /** Ignore patterns (--ignore, repeatable). */
  ignore?: string[];
  /** false with --no-live: a staged push (published, release.json stays on the live build). */
  live: boolean;
  resume?: string;
  idleTimeout?: number;
  /** --full: send the whole tar even when the app keeps builds a delta could reference. */
  full?: boolean;
}

/** What a push hands to the upload: a stream factory (from a byte offset on, to resume) and its exact size. */
interface BuildSource {
  kind: 'folder' | 'tar';
  sizeBytes: number;
  files?: number;
  /** What a resume checks: the source is still what was sent. */
  fingerprint: string;
  open: (offset: number) => Readable;
  /** A folder's entries, as the tar lists them (what a delta push chunks). */
  entries?: TarWriteEntry[];
}

/**
 * Registers `rockit push <dir|tar> <org>/<app>`: uploads a native build (a folder is streamed as
 * an uncompressed tar whose size is computed first; a tar file is sent as it is), then follows
 * dltar → mkraw → deploy and prints the published release. Exit code 1 when any step fails,
 * with the failing task's error fields. `--no-wait` stops after the upload.
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  withConnectionOptions(
    program
      .command('push [source] [target]')
      .description('upload a build (a folder or a .tar) to <org>/<app> and wait until it is published')
      .option('--name <buildName>', 'build name shown in the console (e.g. a version)')
      .option('--resume <task>', 'go on with an upload this machine started (the source and target are remembered)')
      .option('--idle-timeout <seconds>', 'give a connection that moves no byte this long up and resume (default 60)', parsePositiveInt('--idle-timeout'))
      .option('--no-wait', 'return once the upload is complete')
      .option('--ignore <pattern>', 'leave out matching files and folders (repeatable; `*`, `**`, `?`; also read from .rockitignore)', collect, [])
      .option('--full', 'send the whole build, not a delta against the builds the app keeps')
      .option('--no-live', 'stage the build: publish its image and patches but keep the live build (make it live later with `rockit apps set-live`)')
      .option('--json', 'print the result as JSON'),
  ).action((source: string | undefined, target: string | undefined, opts: PushOptions) =>
    runAction(ctx, opts.json, () => (opts.resume !== undefined ? resume(ctx, opts.resume, source, opts) : push(ctx, source, target, opts))),
  );
}

/** Splits "<org>/<app>"; throws unless both parts are present. */
export function parseTarget(target: string): { orgName: string; appName: string } {
  const parts = target.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`target must be <org>/<app>, got "${target}"`);
  return { orgName: parts[0], appName: parts[1] };
}

/**
 * Opens the build to push and checks it before a byte is sent (issue 13 item 6): a folder
 * without files, an entry the engine would refuse (a symlink out of the build...), or a file that is
 * not a tar is refused here, naming `source`. `ignore`: butler-like patterns, plus the folder's
 * `.rockitignore`.
 */
async function openSource(source: string, ignore: readonly string[] = []): Promise<BuildSource> {
  const st = await fs.stat(source).catch((err: NodeJS.ErrnoException) => {
    throw new Error(err.code === 'ENOENT' ? `${source} does not exist` : `cannot read ${source}: ${err.message}`);
  });
  if (st.isDirectory()) {
    const entries = applyIgnore(await listFolder(source), [...(await readIgnoreFile(source)), ...ignore]);
    checkFolderEntries(source, entries);
    return {
      kind: 'folder',
      sizeBytes: tarSize(entries),
      files: entries.filter((e) => e.type === 'file').length,
      // Sub-second modification times: a file rewritten within the second still shows.
      fingerprint: fingerprint(
        await Promise.all(entries.map(async (e) => ({ ...e, mtime: e.type === 'file' ? (await fs.lstat(e.source)).mtimeMs : e.mtime }))),
      ),
      // A folder is packed again on a resume; the bytes before `offset` are packed and skipped.
      open: (offset) => (offset === 0 ? packTar(entries) : packTar(entries).pipe(skipBytes(offset))),
      entries,
    };
  }
  if (st.isFile()) {
    if (ignore.length > 0) throw new Error(`--ignore applies to folders; ${source} is a file (a tar is sent as it is)`);
    await checkTarFile(source);
    return {
      kind: 'tar',
      sizeBytes: st.size,
      fingerprint: fingerprint([{ name: '', type: 'tar', size: st.size, mtime: st.mtimeMs }]),
      open: (offset) => createReadStream(source, { start: offset }),
    };
  }
  throw new Error(`${source} is neither a folder nor a tar file`);
}

/**
 * Ends an upload task that can never complete (api.md §8, `expire`: the server refused the
 * upload for good, e.g. too large), so the app is not left waiting. Best effort: `409
 * invalid-state` means the server already moved the task on, and any other failure changes
 * nothing about the error the user sees. Returns whether the task was expired. Never called
 * because the CLI gave up on a connection: such an upload stays open, to resume.
 */
async function expireUpload(client: ApiClient, taskName: string): Promise<boolean> {
  try {
    await client.patch('/be/v1/tasks', { name: taskName, expire: true });
    return true;
  } catch {
    return false;
  }
}

async function push(ctx: CliContext, source: string | undefined, target: string | undefined, opts: PushOptions): Promise<void> {
  if (source === undefined || target === undefined) throw new Error('push needs <source> and <target> (or --resume <task>)');
  const { orgName, appName } = parseTarget(target);
  const { client, who } = await connect(ctx, opts);
  if (orgName !== who.orgName) {
    throw new Error(`logged in to organization ${who.orgName}; cannot push to ${orgName}/${appName}`);
  }
  const build = await openSource(source, opts.ignore ?? []);
  const log = logger(ctx, opts);
  log(`${path.basename(path.resolve(source))}: ${build.kind === 'folder' ? `${build.files} files, ` : ''}${formatBytes(build.sizeBytes)} to upload`);

  let delta: PlannedDelta | null = null;
  if (build.entries && !opts.full) {
    const bar = createProgress({ label: 'chunking', total: build.sizeBytes, json: opts.json, stream: ctx.stderr });
    delta = await planDelta(client, appName, build.entries, (n) => bar.update(n));
    bar.done();
  }
  const body: Record<string, unknown> = { appName };
  if (opts.name !== undefined) body.buildName = opts.name;
  if (opts.live === false) body.live = false;
  const submit = (withDelta: boolean) =>
    client.post<SubmitBuildAnswer>('/be/v1/builds', withDelta ? { ...body, delta: true } : body).catch((err: unknown) => {
      if (err instanceof ApiError && err.error === 'app-locked') {
        err.hint = `${appName} is busy or in error state after a failed deploy; see \`rockit tasks --app ${appName}\``;
      }
      throw err;
    });
  let submitted: SubmitBuildAnswer;
  try {
    submitted = await submit(delta !== null);
  } catch (err) {
    if (delta === null || !isDeltaUnsupported(err)) throw err;
    delta = null; // an older server: the whole build
    submitted = await submit(false);
  }
  if (!submitted.upload || typeof submitted.upload.url !== 'string' || !submitted.task) {
    throw new ApiError({ status: 202, error: 'unexpected-response', message: 'build answer without task and upload.url' });
  }
  const pending: PendingUpload = {
    taskName: submitted.task.name,
    server: who.server,
    orgName,
    appName,
    ...(opts.name !== undefined ? { buildName: opts.name } : {}),
    ...(opts.ignore && opts.ignore.length > 0 ? { ignore: opts.ignore } : {}),
    url: new URL(submitted.upload.url, client.baseUrl).href,
    method: submitted.upload.method || 'PUT',
    source: path.resolve(source),
    sizeBytes: build.sizeBytes,
    fingerprint: build.fingerprint,
    createdMs: ctx.now(),
  };
  let sent: BuildSource = build;
  if (delta !== null) {
    const written = await writeDeltaFile(ctx.env, submitted.task.name, delta);
    pending.delta = { file: written.file, buildSizeBytes: build.sizeBytes, chunkIds: delta.ids, newChunks: written.literalChunks };
    pending.sizeBytes = written.sizeBytes;
    sent = deltaSource(written.file, written.sizeBytes, build);
    const pct = build.sizeBytes > 0 ? ((100 * written.sizeBytes) / build.sizeBytes).toFixed(1) : '0';
    log(`delta: ${formatBytes(written.sizeBytes)} to send of ${formatBytes(build.sizeBytes)} (${pct} %); ${written.literalChunks} of ${written.literalChunks + written.refChunks} chunks are new`);
  }
  // Kept until the upload is complete, so `--resume` can go on after this command ended.
  await savePendingUpload(ctx.env, pending).catch((err: unknown) => log(`(cannot remember the upload for --resume: ${(err as Error).message})`));
  await upload(ctx, client, pending, sent, 0, opts);
  await afterUploadOrFull(ctx, client, pending, submitted.task, sent, opts);
}

/** What a delta push uploads: the delta file, fingerprinted as the build it stands for. */
function deltaSource(file: string, sizeBytes: number, build: BuildSource): BuildSource {
  return {
    kind: build.kind,
    sizeBytes,
    ...(build.files !== undefined ? { files: build.files } : {}),
    fingerprint: build.fingerprint,
    open: (offset) => createReadStream(file, { start: offset }),
  };
}

/**
 * afterUpload, and when the server could not use a delta (a referenced chunk was rotated away
 * meanwhile, or it refused the file), a full push of the same source right after.
 */
async function afterUploadOrFull(ctx: CliContext, client: ApiClient, pending: PendingUpload, first: TaskDto, sent: BuildSource, opts: PushOptions): Promise<void> {
  try {
    await afterUpload(ctx, client, pending, first, sent, opts);
  } catch (err) {
    if (!pending.delta || !isRefusedDelta(err)) throw err;
    const code = (err.task.error as { code?: string }).code;
    logger(ctx, opts)(`the server could not build from the delta (${code}); pushing the whole build`);
    await push(ctx, pending.source, `${pending.orgName}/${pending.appName}`, { ...opts, full: true, ...(pending.buildName !== undefined ? { name: pending.buildName } : {}) });
  }
}

/**
 * `rockit push --resume <task>`: goes on with an upload this machine started. The upload URL,
 * the source and the target come from the local record (pending-uploads.ts); a `source` given
 * on the command line replaces the remembered one (the build moved) and must fingerprint the same.
 */
async function resume(ctx: CliContext, taskName: string, source: string | undefined, opts: PushOptions): Promise<void> {
  const pending = await findPendingUpload(ctx.env, taskName);
  if (!pending) {
    throw new Error(`no upload of task ${taskName} was started on this machine (or it is complete); push again to start a new one`);
  }
  const { client, who } = await connect(ctx, opts);
  if (who.orgName !== pending.orgName || new URL(who.server).origin !== new URL(pending.server).origin) {
    throw new Error(`task ${taskName} was pushed to ${pending.orgName} on ${pending.server}; log in there to resume it`);
  }
  const log = logger(ctx, opts);
  let build = await openSource(source ?? pending.source, pending.ignore ?? []);
  if (build.sizeBytes !== (pending.delta?.buildSizeBytes ?? pending.sizeBytes) || build.fingerprint !== pending.fingerprint) {
    throw new Error(`${source ?? pending.source} changed since the upload of task ${taskName} started; push it again as a new build`);
  }
  if (pending.delta) {
    const st = await fs.stat(pending.delta.file).catch(() => null);
    if (st?.size !== pending.sizeBytes) throw new Error(`the delta file of task ${taskName} is gone or changed (${pending.delta.file}); push again to start a new upload`);
    build = deltaSource(pending.delta.file, pending.sizeBytes, build);
  }
  const task = (await client.get<SuccessBody & { task: TaskDto }>(`/be/v1/tasks/${encodeURIComponent(taskName)}`)).task;
  const status = await uploadStatus(new URL(pending.url));
  if (status.state === 'expired') {
    await forgetPendingUpload(ctx.env, taskName, ctx.now());
    throw new Error(`the upload of task ${taskName} has expired; push again to start a new one`);
  }
  if (status.state === 'waiting') {
    log(`resuming task ${taskName}: the server holds ${formatBytes(status.receivedBytes)} of ${formatBytes(pending.sizeBytes)}`);
    await upload(ctx, client, pending, build, status.receivedBytes, opts);
  } else {
    log(`task ${taskName}: the server holds the whole upload`);
    await forgetPendingUpload(ctx.env, taskName, ctx.now());
    await removeDeltaFile(pending.delta?.file);
  }
  await afterUploadOrFull(ctx, client, pending, task, build, opts);
}

function logger(ctx: CliContext, opts: PushOptions): (line: string) => void {
  return (line) => {
    if (!opts.json) ctx.stderr.write(line + '\n');
  };
}

/** The PUT(s) of the build, from `startAt` on; forgets the local record once the server has it all. */
async function upload(ctx: CliContext, client: ApiClient, pending: PendingUpload, build: BuildSource, startAt: number, opts: PushOptions): Promise<void> {
  const log = logger(ctx, opts);
  const uploadUrl = new URL(pending.url);
  const headers = client.isSameOrigin(uploadUrl) ? await client.authHeaders() : {};
  const bar = createProgress({ label: 'upload', total: build.sizeBytes, json: opts.json, stream: ctx.stderr });
  const startedMs = ctx.now();
  const taskName = pending.taskName;
  // Ctrl-C during the upload stops it cleanly; the upload stays open on the server (resume it, or
  // cancel it with `rockit tasks cancel`). After the upload, Ctrl-C just stops watching.
  let reading: Readable | null = null;
  let interrupted = false;
  const stopWatching = ctx.onInterrupt?.(() => {
    interrupted = true;
    reading?.destroy(new Error('interrupted'));
  });
  const howToGoOn = `resume with: rockit push --resume ${taskName}   (or give it up: rockit tasks cancel ${taskName})`;
  try {
    await uploadResumable({
      url: uploadUrl,
      method: pending.method,
      sizeBytes: build.sizeBytes,
      startAt,
      open: (offset) => {
        if (interrupted) throw new Error('interrupted');
        reading = build.open(offset);
        return reading;
      },
      headers,
      onProgress: (sent) => bar.update(sent),
      onResume: ({ attempt, fromBytes, reason }) => log(`upload broke off (${reason}); resuming at ${formatBytes(fromBytes)} (attempt ${attempt})`),
      onRetry: ({ reason, waitMs }) => log(`the server does not answer (${reason}); asking again in ${Math.round(waitMs / 1000)} s`),
      sleep: ctx.sleep,
      ...(opts.idleTimeout !== undefined ? { idleTimeoutMs: opts.idleTimeout * 1000 } : { idleTimeoutMs: 60_000 }),
    });
  } catch (err) {
    stopWatching?.();
    bar.done();
    if (err instanceof Error) err.message = `upload of task ${taskName} ${interrupted ? 'stopped' : 'failed'}: ${err.message}`;
    if (interrupted || !(err instanceof ApiError)) {
      // The CLI gave up (resumes ran out, Ctrl-C, reading the build failed): the upload stays open on the server, to resume.
      if (err instanceof Error) (err as Error & { hint?: string }).hint = howToGoOn;
      else ctx.stderr.write(`${howToGoOn}\n`);
      throw err;
    }
    // The server's refusal, which no resume can change (too large, malformed, expired): end the task so the app is free.
    const expired = await expireUpload(client, taskName);
    await forgetPendingUpload(ctx.env, taskName, ctx.now());
    await removeDeltaFile(pending.delta?.file);
    if (expired && !opts.json) ctx.stderr.write(`task ${taskName} expired; push again to retry\n`);
    throw err;
  }
  stopWatching?.();
  bar.done();
  await forgetPendingUpload(ctx.env, taskName, ctx.now());
  await removeDeltaFile(pending.delta?.file);
  const seconds = Math.max(0.001, (ctx.now() - startedMs) / 1000);
  const sent = build.sizeBytes - startAt;
  log(`uploaded ${formatBytes(sent)} in ${seconds.toFixed(1)} s (${formatBytes(sent / seconds)}/s)`);
}

/** Follows dltar → mkraw → deploy (unless --no-wait) and prints the result. */
async function afterUpload(ctx: CliContext, client: ApiClient, pending: PendingUpload, first: TaskDto, build: BuildSource, opts: PushOptions): Promise<void> {
  const { orgName, appName } = pending;
  const log = logger(ctx, opts);
  const submitted = { task: first };
  const summary: Record<string, unknown> = {
    status: 'success',
    orgName,
    appName,
    buildName: pending.buildName ?? null,
    uploadedBytes: build.sizeBytes,
    ...(pending.delta ? { delta: true, buildBytes: pending.delta.buildSizeBytes, chunkIds: pending.delta.chunkIds ?? null, newChunks: pending.delta.newChunks ?? null } : {}),
    ...(build.files !== undefined ? { files: build.files } : {}),
  };
  if (!opts.wait) {
    if (opts.json) ctx.stdout.write(JSON.stringify({ ...summary, task: submitted.task }, null, 2) + '\n');
    else ctx.stdout.write(`uploaded; follow with: rockit tasks --app ${appName}\n`);
    return;
  }

  // One line per state change (logs stay short when stderr is a file); on a terminal, a bar
  // shows the running task's progress in between. Every final state is a change, so the bar
  // is always closed before the result is printed.
  let lastKey = '';
  let taskBar: ReturnType<typeof createProgress> | null = null;
  const tasks = await followPipeline({
    client,
    appName,
    first: submitted.task,
    pollIntervalMs: ctx.pollIntervalMs,
    sleep: ctx.sleep,
    onUpdate: (t: TaskDto) => {
      const key = `${t.name} ${t.status}`;
      if (key !== lastKey) {
        taskBar?.done();
        taskBar = null;
        log(`${t.type.padEnd(6)} ${t.name}  ${t.status}`);
        lastKey = key;
      }
      if (t.status === 'running' && typeof t.progress === 'number') {
        taskBar ??= createProgress({ label: `${t.type} ${t.name}`, total: 100, unit: 'items', json: opts.json, stream: ctx.stderr });
        taskBar.update(Math.round(t.progress * 100));
      }
    },
  });
  const res = await client.get<SuccessBody & { app: AppDto }>(`/be/v1/apps/${encodeURIComponent(appName)}`);
  const app = res.app;
  const deployTask = tasks.find((t) => t.type === 'deploy');
  const deployResult = (deployTask?.result ?? {}) as { live?: unknown; buildId?: unknown };
  if (deployResult.live === false) {
    const staged = typeof deployResult.buildId === 'number' ? deployResult.buildId : (tasks.find((t) => t.type === 'mkraw')?.buildId ?? null);
    if (opts.json) {
      ctx.stdout.write(JSON.stringify({ ...summary, tasks, staged: { buildId: staged }, release: { iCurBuild: app.iCurBuild ?? null } }, null, 2) + '\n');
      return;
    }
    ctx.stdout.write(
      `staged ${orgName}/${appName} build ${staged ?? '?'}; build ${app.iCurBuild ?? '(none)'} stays live. ` +
        `Make it live with: rockit apps set-live ${appName} ${staged ?? '<build>'}\n`,
    );
    return;
  }
  const current = app.iCurBuild ?? null;
  const patches = (app.patches ?? []).filter((p) => p.toBuildId === current);
  const release = {
    iCurBuild: current,
    dxfName: app.dxfName ?? null,
    buildName: (app.builds ?? []).find((b) => b.buildId === current)?.buildName ?? null,
    patches,
  };
  if (opts.json) {
    ctx.stdout.write(JSON.stringify({ ...summary, tasks, release }, null, 2) + '\n');
    return;
  }
  const patchText =
    patches.length > 0
      ? `patches from build ${patches.map((p) => `${p.fromBuildId}${p.sizeBytes !== undefined ? ` (${formatBytes(p.sizeBytes)})` : ''}`).join(', ')}`
      : 'no patches';
  ctx.stdout.write(
    `published ${orgName}/${appName} build ${current ?? '?'}${release.buildName ? ` (${release.buildName})` : ''}, dxf ${release.dxfName ?? '?'}; ${patchText}\n`,
  );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
