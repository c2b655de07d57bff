import type { Command } from 'commander';
import {
  connect,
  parsePositiveInt,
  processContext,
  runAction,
  withConnectionOptions,
  type CliContext,
  type ConnectionOptions,
} from '../api/context.js';
import { formatAge, formatTable, formatTaskError, writeList } from '../api/output.js';
import type { AppDto, SuccessBody, TaskDto } from '@rockit/contract';
import { FINAL_TASK_STATUSES } from '../api/task-states.js';
import { formatBytes } from '../progress.js';

interface CreateOptions extends ConnectionOptions {
  label: string;
  maxBuilds?: number;
  deployments?: string[];
}

/**
 * Registers `rockit apps create <name>` (`POST /be/v1/apps`, api.md §7.1) and `rockit apps list`
 * (every page of `GET /be/v1/apps`). Names are checked by the server, which owns the rules.
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  const apps = program.command('apps').description('manage apps');

  withConnectionOptions(
    apps
      .command('create <name>')
      .description('create an app')
      .requiredOption('--label <label>', 'display name')
      .option('--max-builds <n>', 'builds to keep (1-100; server default 5)', parsePositiveInt('--max-builds'))
      .option('--deployments <names>', 'comma-separated deployments to publish to (default: all of the org)', parseList)
      .option('--json', 'print the created app as JSON'),
  ).action((name: string, opts: CreateOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const body: Record<string, unknown> = { name, label: opts.label };
      if (opts.maxBuilds !== undefined) body.maxBuilds = opts.maxBuilds;
      if (opts.deployments !== undefined) body.deployments = opts.deployments;
      const res = await client.post<SuccessBody & { app: AppDto }>('/be/v1/apps', body);
      if (opts.json) ctx.stdout.write(JSON.stringify(res.app, null, 2) + '\n');
      else ctx.stdout.write(`created app ${res.app?.name ?? name}\n`);
    }),
  );

  withConnectionOptions(
    apps
      .command('list')
      .description('list the apps of the organization')
      .option('--json', 'print the apps as a JSON array'),
  ).action((opts: ConnectionOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const list = await client.listAll<AppDto>('/be/v1/apps', 'apps', { 'order[]': 'name' });
      const now = ctx.now();
      writeList(ctx.stdout, opts.json, list, 'apps', (items) =>
        formatTable(
          ['NAME', 'LABEL', 'BUILD', 'DXF', 'BUILDS', 'DEPLOYMENTS', 'STATE', 'UPDATED'],
          items.map((a) => [
            a.name,
            a.label ?? '',
            a.iCurBuild != null ? String(a.iCurBuild) : '-',
            a.dxfName ?? '-',
            `${a.builds?.length ?? 0}/${a.maxBuilds ?? '?'}`,
            a.deployments && a.deployments.length > 0 ? a.deployments.join(',') : '(all)',
            appState(a),
            formatAge(a.updated, now),
          ]),
        ),
      );
    }),
  );

  withConnectionOptions(
    apps
      .command('set-live <app> <build>')
      .description('make a kept build live (release control: promote a staged build, or roll back); republishes release.json everywhere')
      .option('--no-wait', 'return once the task is submitted')
      .option('--json', 'print the app and the task as JSON'),
  ).action((appName: string, buildText: string, opts: ConnectionOptions & { wait: boolean }) =>
    runAction(ctx, opts.json, async () => {
      const build = parsePositiveInt('<build>')(buildText);
      const { client } = await connect(ctx, opts);
      const res = await client.patch<SuccessBody & { app: AppDto; task?: TaskDto }>('/be/v1/apps', { name: appName, iCurBuild: build });
      let task = res.task;
      if (opts.wait && task) task = await waitForTask(ctx, client, task);
      if (opts.json) {
        ctx.stdout.write(JSON.stringify({ app: res.app, task }, null, 2) + '\n');
      } else if (!opts.wait) {
        ctx.stdout.write(`submitted ${task?.name ?? 'a deploy task'}: build ${build} of ${appName} goes live\n`);
      }
      if (task && opts.wait && task.status !== 'succeeded') {
        throw new Error(`making build ${build} of ${appName} live failed (task ${task.name} ${task.status}): ${formatTaskError(task)}`);
      }
      if (!opts.json && opts.wait) ctx.stdout.write(`build ${build} of ${appName} is live (release.json republished on the depot and every deployment)\n`);
    }),
  );

  withConnectionOptions(
    program
      .command('builds <app>')
      .description('list the kept builds of an app with sizes, dates and which one is live')
      .option('--json', 'print the builds as a JSON array'),
  ).action((appName: string, opts: ConnectionOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const res = await client.get<SuccessBody & { app: AppDto }>(`/be/v1/apps/${encodeURIComponent(appName)}`);
      const live = res.app.iCurBuild ?? null;
      const builds = [...(res.app.builds ?? [])].sort((a, b) => b.buildId - a.buildId).map((b) => ({ ...b, live: b.buildId === live }));
      const now = ctx.now();
      writeList(ctx.stdout, opts.json, builds, 'builds', (items) =>
        formatTable(
          ['BUILD', 'NAME', 'SIZE', 'FILES', 'CREATED', 'LIVE'],
          items.map((b) => [
            String(b.buildId),
            b.buildName ?? '-',
            b.sizeBytes !== undefined ? formatBytes(b.sizeBytes) : '?',
            b.files !== undefined ? String(b.files) : '?',
            b.created ? `${new Date(b.created * 1000).toISOString().replace('T', ' ').slice(0, 16)} (${formatAge(b.created, now)})` : '?',
            b.live ? 'live' : '',
          ]),
        ),
      );
    }),
  );
}

/** Polls a task until it reaches a final status. */
async function waitForTask(ctx: CliContext, client: Awaited<ReturnType<typeof connect>>['client'], task: TaskDto): Promise<TaskDto> {
  let current = task;
  while (!FINAL_TASK_STATUSES.has(current.status)) {
    await ctx.sleep(ctx.pollIntervalMs);
    current = (await client.get<SuccessBody & { task: TaskDto }>(`/be/v1/tasks/${encodeURIComponent(task.name)}`)).task;
  }
  return current;
}

/** One word for the app's condition; `error` wins because it blocks imports. */
export function appState(a: AppDto): string {
  if (a.error) return `error (${a.error.type ?? 'task'} ${a.error.task ?? ''})`.replace(' )', ')');
  if (a.locked) return 'locked';
  if (a.processing) return 'processing';
  if (a.exporting) return 'exporting';
  return 'ok';
}

/** "a, b,,c" → ["a", "b", "c"]; "" → [] (an explicit empty list). */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
