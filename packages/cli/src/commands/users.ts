import type { Command } from 'commander';
import { connect, processContext, runAction, withConnectionOptions, type CliContext, type ConnectionOptions } from '../api/context.js';
import type { CreateApiKeyAnswer, CreateUserAnswer, SuccessBody } from '@rockit/contract';

/** The documented publisher role (README "CI pipeline"): push builds and follow them, set the live build. */
export const PUBLISHER_PERMISSIONS = { apps: 6, tasks: 2 } as const;

const RESOURCES = ['apps', 'beUsers', 'bundles', 'consumption', 'dependencies', 'deployments', 'keys', 'roles', 'sources', 'subscriptions', 'tasks', 'trainings'];

/** `apps=6,tasks=2` → { apps: 6, tasks: 2 }; resource names as api.md §2.3 lists them. */
export function parsePermissions(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z]+)=(\d{1,2})$/.exec(part);
    if (!m || !RESOURCES.includes(m[1])) {
      throw new Error(`--permissions: "${part}" is not <resource>=<bits> (resources: ${RESOURCES.join(', ')}; bits: create 1, read 2, update 4, delete 8, execute 16)`);
    }
    out[m[1]] = Number(m[2]);
  }
  return out;
}

/** How a CI job uses a machine user's key: the variables `rockit` reads. */
function ciLines(server: string, org: string, username: string, key: string): string {
  return [
    `ROCKIT_SERVER=${server}`,
    `ROCKIT_ORG=${org}`,
    `ROCKIT_USER=${username}`,
    `ROCKIT_API_KEY=${key}`,
  ].join('\n');
}

/**
 * Registers what setting up a CI pipeline needs without curl (issue 13 item 7):
 * `rockit roles create <name> [--permissions …|--publisher]` (POST /be/v1/roles),
 * `rockit users create-machine <username> --roles …` (POST /be/v1/users, machine account; prints its API key once),
 * `rockit apikeys create <username>` (POST /be/v1/apikeys) and `rockit apikeys revoke <id>` (DELETE /be/v1/apikeys/{id}).
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  const roles = program.command('roles').description('manage roles');
  withConnectionOptions(
    roles
      .command('create <name>')
      .description('create a role; --publisher gives the documented publisher permissions (apps=6,tasks=2)')
      .option('--permissions <list>', 'comma-separated <resource>=<bits>, e.g. apps=6,tasks=2', parsePermissions)
      .option('--publisher', 'the publisher role: read and update apps (push, set-live), read tasks')
      .option('--label <label>', 'display name')
      .option('--json', 'print the role as JSON'),
  ).action((name: string, opts: ConnectionOptions & { permissions?: Record<string, number>; publisher?: boolean; label?: string }) =>
    runAction(ctx, opts.json, async () => {
      if (!opts.permissions && !opts.publisher) throw new Error('give --permissions <list> or --publisher');
      const { client } = await connect(ctx, opts);
      const permissions = { ...(opts.publisher ? PUBLISHER_PERMISSIONS : {}), ...(opts.permissions ?? {}) };
      const res = await client.post<SuccessBody & { role: unknown }>('/be/v1/roles', { name, ...(opts.label ? { label: opts.label } : {}), permissions });
      if (opts.json) ctx.stdout.write(JSON.stringify(res.role, null, 2) + '\n');
      else ctx.stdout.write(`created role ${name} (${Object.entries(permissions).map(([k, v]) => `${k}=${v}`).join(',')})\n`);
    }),
  );

  const users = program.command('users').description('manage users');
  withConnectionOptions(
    users
      .command('create-machine <username>')
      .description('create a machine user (for CI) and print its API key, shown only this once')
      .requiredOption('--roles <names>', 'comma-separated roles, e.g. publisher')
      .option('--label <label>', 'display name (default: the username)')
      .option('--json', 'print the user and the key as JSON'),
  ).action((username: string, opts: ConnectionOptions & { roles: string; label?: string }) =>
    runAction(ctx, opts.json, async () => {
      const { client, who } = await connect(ctx, opts);
      const roleNames = opts.roles.split(',').map((r) => r.trim()).filter(Boolean);
      // A machine account's answer always carries its first API key.
      const res = await client.post<CreateUserAnswer & Required<Pick<CreateUserAnswer, 'apiKey'>>>('/be/v1/users', { username, label: opts.label ?? username, roles: roleNames, type: 'machine' });
      if (opts.json) {
        ctx.stdout.write(JSON.stringify({ user: res.user, apiKey: res.apiKey }, null, 2) + '\n');
        return;
      }
      ctx.stderr.write(`created machine user ${username}; its API key is shown only now. For the CI job's secret variables:\n`);
      ctx.stdout.write(ciLines(who.server, who.orgName, username, res.apiKey.key) + '\n');
      ctx.stderr.write(`key id ${res.apiKey.id} (revoke with: rockit apikeys revoke ${res.apiKey.id})\n`);
    }),
  );

  const apikeys = program.command('apikeys').description("manage machine users' API keys");
  withConnectionOptions(
    apikeys
      .command('create <username>')
      .description('mint another API key for a machine user (rotation without downtime); shown only this once')
      .option('--json', 'print the key as JSON'),
  ).action((username: string, opts: ConnectionOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client, who } = await connect(ctx, opts);
      const res = await client.post<CreateApiKeyAnswer>('/be/v1/apikeys', { username });
      if (opts.json) {
        ctx.stdout.write(JSON.stringify(res.apiKey, null, 2) + '\n');
        return;
      }
      ctx.stdout.write(ciLines(who.server, who.orgName, username, res.apiKey.key) + '\n');
      ctx.stderr.write(`key id ${res.apiKey.id} (revoke with: rockit apikeys revoke ${res.apiKey.id})\n`);
    }),
  );
  withConnectionOptions(
    apikeys
      .command('revoke <id>')
      .description('revoke an API key at once')
      .option('--json', 'print the answer as JSON'),
  ).action((id: string, opts: ConnectionOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      await client.delete<SuccessBody>(`/be/v1/apikeys/${encodeURIComponent(id)}`);
      if (opts.json) ctx.stdout.write(JSON.stringify({ status: 'success', revoked: id }) + '\n');
      else ctx.stdout.write(`revoked API key ${id}\n`);
    }),
  );
}
