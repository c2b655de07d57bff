import { Option, type Command } from 'commander';
import {
  connect,
  parsePositiveInt,
  processContext,
  runAction,
  withConnectionOptions,
  type CliContext,
  type ConnectionOptions,
} from '../api/context.js';
import { formatAge, formatTable, writeList } from '../api/output.js';
import { forgetPendingUpload } from '../api/pending-uploads.js';
import type { ListBody, SuccessBody, TaskDto } from '@rockit/contract';
import { TASK_STATUSES, TASK_TYPES } from '../api/task-states.js';

interface TasksOptions extends ConnectionOptions {
  app?: string;
  status?: string;
  type?: string;
  limit: number;
}

/**
 * Registers `rockit tasks`: the most recent tasks first (`GET /be/v1/tasks`, api.md §8), as a
 * table or, with `--json`, the server's task objects unchanged. `--app` is the server's partial
 * match on the app name.
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  const tasks = program.command('tasks');
  withConnectionOptions(
    tasks
      .description('show recent tasks (imports, deploys, trace processing)')
      .option('--app <name>', 'only tasks of apps whose name contains this')
      .addOption(new Option('--status <status>', 'only tasks in this state').choices(TASK_STATUSES))
      .addOption(new Option('--type <type>', 'only tasks of this type').choices(TASK_TYPES))
      .option('--limit <n>', 'how many (1-1000)', parsePositiveInt('--limit'), 20)
      .option('--json', 'print the tasks as a JSON array'),
  ).action((opts: TasksOptions) =>
    runAction(ctx, opts.json, async () => {
      if (opts.limit > 1000) throw new Error('--limit must be at most 1000');
      const { client } = await connect(ctx, opts);
      const res = await client.get<ListBody & { tasks: TaskDto[] }>('/be/v1/tasks', {
        appName: opts.app,
        status: opts.status,
        type: opts.type,
        'order[]': '-created',
        limit: opts.limit,
      });
      const tasks = res.tasks ?? [];
      writeList(ctx.stdout, opts.json, tasks, 'tasks', (items) => formatTasks(items, ctx.now()));
      if (!opts.json && res.total > tasks.length) ctx.stdout.write(`(${tasks.length} of ${res.total}; use --limit for more)\n`);
    }),
  );

  // Decided: cancel is for uploads only (`PATCH /be/v1/tasks` `expire`, api.md §8): it ends an
  // import that waits for its bytes, drops what was stored and frees the app. The pipeline's
  // other tasks (dltar once the upload is in, mkraw, deploy) are bounded work the queue finishes,
  // retries or fails by itself; the server refuses them with 409 invalid-state, shown as it is.
  withConnectionOptions(
    tasks
      .command('cancel <task>')
      .description('give up an upload that waits for its bytes (the app is free again; the bytes stored are dropped)')
      .option('--json', 'print the task as JSON'),
  ).action((taskName: string, opts: ConnectionOptions & { json?: boolean }) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const res = await client.patch<SuccessBody & { task: TaskDto }>('/be/v1/tasks', { name: taskName, expire: true });
      await forgetPendingUpload(ctx.env, taskName, ctx.now());
      if (opts.json) ctx.stdout.write(JSON.stringify(res.task, null, 2) + '\n');
      else ctx.stdout.write(`task ${taskName} cancelled (${res.task.status}); ${res.task.appName ?? 'its app'} takes builds again\n`);
    }),
  );
}

/** The task table: name, type, status, app, build, progress, age, error message. */
export function formatTasks(tasks: readonly TaskDto[], nowMs: number): string {
  return formatTable(
    ['NAME', 'TYPE', 'STATUS', 'APP', 'BUILD', 'PROGRESS', 'AGE', 'ERROR'],
    tasks.map((t) => [
      t.name,
      t.type,
      t.status,
      t.appName ?? '-',
      t.buildId != null ? String(t.buildId) : '-',
      typeof t.progress === 'number' ? `${Math.round(t.progress * 100)}%` : '-',
      formatAge(t.created, nowMs),
      oneLine(t.error?.message ?? (t.error ? JSON.stringify(t.error) : '')),
    ]),
  );
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? flat.slice(0, 79) + '…' : flat;
}
