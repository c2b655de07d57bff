import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ApiError, type ApiClient } from '../api/client.js';
import { connect, processContext, runAction, withConnectionOptions, type CliContext, type ConnectionOptions } from '../api/context.js';
import { followPipeline } from '../api/follow-tasks.js';
import { listFolder, packEntries, skipBytes, tarSize } from '../api/tar-pack.js';
import { uploadResumable } from '../api/upload.js';
import type { App, BuildUploadResponse, SuccessEnvelope, Task } from '../api/types.js';
import { createProgress, formatBytes } from '../progress.js';

interface PushOptions extends ConnectionOptions {
  name?: string;
  wait: boolean;
}

/** What a push hands to the upload: a stream factory (from a byte offset on, to resume) and its exact size. */
interface BuildSource {
  kind: 'folder' | 'tar';
  sizeBytes: number;
  files?: number;
  open: (offset: number) => Readable;
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
      .command('push <source> <target>')
      .description('upload a build (a folder or a .tar) to <org>/<app> and wait until it is published')
      .option('--name <buildName>', 'build name shown in the console (e.g. a version)')
      .option('--no-wait', 'return once the upload is complete')
      .option('--json', 'print the result as JSON'),
  ).action((source: string, target: string, opts: PushOptions) =>
    runAction(ctx, opts.json, () => push(ctx, source, target, opts)),
  );
}

/** Splits "<org>/<app>"; throws unless both parts are present. */
export function parseTarget(target: string): { orgName: string; appName: string } {
  const parts = target.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`target must be <org>/<app>, got "${target}"`);
  return { orgName: parts[0], appName: parts[1] };
}

async function openSource(source: string): Promise<BuildSource> {
  const st = await fs.stat(source).catch((err: NodeJS.ErrnoException) => {
    throw new Error(err.code === 'ENOENT' ? `${source} does not exist` : `cannot read ${source}: ${err.message}`);
  });
  if (st.isDirectory()) {
    const entries = await listFolder(source);
    return {
      kind: 'folder',
      sizeBytes: tarSize(entries),
      files: entries.filter((e) => e.type === 'file').length,
      // A folder is packed again on a resume; the bytes before `offset` are packed and skipped.
      open: (offset) => (offset === 0 ? packEntries(entries) : packEntries(entries).pipe(skipBytes(offset))),
    };
  }
  if (st.isFile()) {
    return { kind: 'tar', sizeBytes: st.size, open: (offset) => createReadStream(source, { start: offset }) };
  }
  throw new Error(`${source} is neither a folder nor a tar file`);
}

/**
 * Ends an upload task whose PUT broke (api.md §8, `expire`), so the app is not left waiting for
 * bytes that will never come. Best effort: `409 invalid-state` means the server already moved the
 * task on (it got the upload, or failed the task itself), and any other failure changes nothing
 * about the error the user sees. Returns whether the task was expired.
 */
async function expireUpload(client: ApiClient, taskName: string): Promise<boolean> {
  try {
    await client.patch('/be/v1/tasks', { name: taskName, expire: true });
    return true;
  } catch {
    return false;
  }
}

async function push(ctx: CliContext, source: string, target: string, opts: PushOptions): Promise<void> {
  const { orgName, appName } = parseTarget(target);
  const { client, who } = await connect(ctx, opts);
  if (orgName !== who.orgName) {
    throw new Error(`logged in to organization ${who.orgName}; cannot push to ${orgName}/${appName}`);
  }
  const build = await openSource(source);
  const log = (line: string) => {
    if (!opts.json) ctx.stderr.write(line + '\n');
  };
  log(`${path.basename(path.resolve(source))}: ${build.kind === 'folder' ? `${build.files} files, ` : ''}${formatBytes(build.sizeBytes)} to upload`);

  const body: Record<string, unknown> = { appName };
  if (opts.name !== undefined) body.buildName = opts.name;
  const submitted = await client.post<BuildUploadResponse>('/be/v1/builds', body).catch((err: unknown) => {
    if (err instanceof ApiError && err.error === 'app-locked') {
      err.hint = `${appName} is busy or in error state after a failed deploy; see \`rockit tasks --app ${appName}\``;
    }
    throw err;
  });
  if (!submitted.upload || typeof submitted.upload.url !== 'string' || !submitted.task) {
    throw new ApiError({ status: 202, error: 'unexpected-response', message: 'build answer without task and upload.url' });
  }
  const uploadUrl = new URL(submitted.upload.url, client.baseUrl);
  const headers = client.isSameOrigin(uploadUrl) ? await client.authHeaders() : {};
  const bar = createProgress({ label: 'upload', total: build.sizeBytes, json: opts.json });
  const startedMs = ctx.now();
  // Ctrl-C during the upload stops it cleanly, so the upload task can be expired below rather
  // than left waiting for bytes; after the upload, Ctrl-C just stops watching (the import goes on).
  let reading: Readable | null = null;
  let interrupted = false;
  const stopWatching = ctx.onInterrupt?.(() => {
    interrupted = true;
    reading?.destroy(new Error('interrupted'));
  });
  try {
    await uploadResumable({
      url: uploadUrl,
      method: submitted.upload.method || 'PUT',
      sizeBytes: build.sizeBytes,
      open: (offset) => {
        if (interrupted) throw new Error('interrupted');
        reading = build.open(offset);
        return reading;
      },
      headers,
      onProgress: (sent) => bar.update(sent),
      onResume: ({ attempt, fromBytes, reason }) => log(`upload broke off (${reason}); resuming at ${formatBytes(fromBytes)} (attempt ${attempt})`),
      sleep: ctx.sleep,
    });
  } catch (err) {
    stopWatching?.();
    bar.done();
    if (err instanceof Error) err.message = `upload of task ${submitted.task.name} failed: ${err.message}`;
    const expired = await expireUpload(client, submitted.task.name);
    if (expired && !opts.json) ctx.stderr.write(`task ${submitted.task.name} expired; push again to retry\n`);
    throw err;
  }
  stopWatching?.();
  bar.done();
  const seconds = Math.max(0.001, (ctx.now() - startedMs) / 1000);
  log(`uploaded ${formatBytes(build.sizeBytes)} in ${seconds.toFixed(1)} s (${formatBytes(build.sizeBytes / seconds)}/s)`);

  const summary: Record<string, unknown> = {
    status: 'success',
    orgName,
    appName,
    buildName: opts.name ?? null,
    uploadedBytes: build.sizeBytes,
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
    onUpdate: (t: Task) => {
      const key = `${t.name} ${t.status}`;
      if (key !== lastKey) {
        taskBar?.done();
        taskBar = null;
        log(`${t.type.padEnd(6)} ${t.name}  ${t.status}`);
        lastKey = key;
      }
      if (t.status === 'running' && typeof t.progress === 'number') {
        taskBar ??= createProgress({ label: `${t.type} ${t.name}`, total: 100, unit: 'items', json: opts.json || ctx.stderr.isTTY !== true });
        taskBar.update(Math.round(t.progress * 100));
      }
    },
  });
  const res = await client.get<SuccessEnvelope & { app: App }>(`/be/v1/apps/${encodeURIComponent(appName)}`);
  const app = res.app;
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
