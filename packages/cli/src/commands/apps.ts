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
import { formatAge, formatTable, writeList } from '../api/output.js';
import type { App, SuccessEnvelope } from '../api/types.js';

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
      const res = await client.post<SuccessEnvelope & { app: App }>('/be/v1/apps', body);
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
      const list = await client.listAll<App>('/be/v1/apps', 'apps', { 'order[]': 'name' });
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
}

/** One word for the app's condition; `error` wins because it blocks imports. */
export function appState(a: App): string {
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
