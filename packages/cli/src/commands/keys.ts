import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ApiClient, toEnvelope } from '../api/client.js';
import { connect, processContext, runAction, withConnectionOptions, type CliContext, type ConnectionOptions } from '../api/context.js';
import { formatTable, writeList } from '../api/output.js';
import type { ClientAuthAnswer, CreatedDownloadKeyDto, DownloadKeyDto, SuccessBody, TraceReceiptAnswer } from '@rockit/contract';

const iso = (s: number | null | undefined): string => (typeof s === 'number' ? new Date(s * 1000).toISOString().replace('.000Z', 'Z') : '-');

/**
 * Registers `rockit keys create <app> [--label]`, `rockit keys list [<app>]`, `rockit keys delete <id>`
 * (download keys, `/be/v1/keys`) and `rockit trace upload <file…>` (`POST /client/v1/traces`).
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  const keys = program.command('keys').description('manage download keys of apps (clients trade them for download tokens)');

  withConnectionOptions(
    keys.command('create <app>').description('create a download key of an app; its secret is printed once').option('--label <label>', 'for people').option('--json', 'print the key as JSON'),
  ).action((app: string, opts: ConnectionOptions & { label?: string }) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const res = await client.post<SuccessBody & { key: CreatedDownloadKeyDto }>('/be/v1/keys', { appName: app, ...(opts.label !== undefined ? { label: opts.label } : {}) });
      if (opts.json) ctx.stdout.write(JSON.stringify(res.key, null, 2) + '\n');
      else ctx.stdout.write(`created download key ${res.key.id} of ${app}\nkey (shown once): ${res.key.key}\n`);
    }),
  );

  withConnectionOptions(
    keys.command('list [app]').description('list download keys (of one app)').option('--json', 'print the keys as a JSON array'),
  ).action((app: string | undefined, opts: ConnectionOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const list = await client.listAll<DownloadKeyDto>('/be/v1/keys', 'keys', { 'order[]': 'created', ...(app ? { appName: app } : {}) });
      writeList(ctx.stdout, opts.json, list, 'keys', (items) =>
        formatTable(['ID', 'APP', 'LABEL', 'CREATED', 'LAST USED'], items.map((k) => [k.id, k.appName, k.label, iso(k.created), iso(k.lastUsed)])),
      );
    }),
  );

  withConnectionOptions(keys.command('delete <id>').description('delete a download key').option('--json', 'print the answer as JSON')).action(
    (id: string, opts: ConnectionOptions) =>
      runAction(ctx, opts.json, async () => {
        const { client } = await connect(ctx, opts);
        await client.delete(`/be/v1/keys/${encodeURIComponent(id)}`);
        if (opts.json) ctx.stdout.write(JSON.stringify({ status: 'success', id }) + '\n');
        else ctx.stdout.write(`deleted download key ${id}\n`);
      }),
  );

  // `rockit trace` is shared with commands/trace.ts (record, convert): whichever registers first creates it.
  const trace = program.commands.find((c) => c.name() === 'trace') ?? program.command('trace').description('record, convert and upload play-session traces');
  trace
    .command('upload <file...>')
    .description('upload traces (binary or NDJSON, plain or zstd; sent as they are) with a download token, or an access key traded for one')
    .requiredOption('--server <url>', 'server base URL')
    .requiredOption('--org <org>', 'organization of the app')
    .requiredOption('--app <app>', 'the app')
    .option('--key <accessKey>', 'a download (access) key of the app (default: ROCKIT_DOWNLOAD_KEY)')
    .option('--token <token>', 'a download token from POST /client/v1/auth')
    .option('--json', 'print the answers as JSON')
    .action((files: string[], opts: { server: string; org: string; app: string; key?: string; token?: string; json?: boolean }) =>
      runAction(ctx, opts.json, async () => {
        const key = opts.key ?? (opts.token === undefined ? ctx.env.ROCKIT_DOWNLOAD_KEY : undefined);
        if ((key === undefined) === (opts.token === undefined)) throw new Error('give exactly one of --key <accessKey> and --token <token>');
        const client = new ApiClient({ server: opts.server, credentials: { kind: 'none' }, ...(ctx.fetch ? { fetch: ctx.fetch } : {}) });
        const fetchImpl = ctx.fetch ?? fetch;
        // An access key is first traded for a download token (POST /client/v1/auth): that checks
        // --org and --app against the key before any trace is sent.
        let token = opts.token;
        if (key !== undefined) {
          const auth = await client.post<ClientAuthAnswer>('/client/v1/auth', { orgName: opts.org, appName: opts.app, key });
          token = auth.auth.token;
        }
        const results: unknown[] = [];
        for (const file of files) {
          const body = await readFile(file);
          const res = await fetchImpl(client.url('/client/v1/traces'), {
            method: 'POST',
            headers: {
              accept: 'application/json',
              'content-type': looksLikeNdjson(body) ? 'application/x-ndjson' : 'application/octet-stream',
              'x-rockit-download-token': token!,
            },
            body,
          });
          const env = toEnvelope(res.status, res.statusText, await res.text(), res.headers.get('x-request-id')) as TraceReceiptAnswer;
          if (env.trace === undefined) throw new Error(`${file}: unexpected answer`);
          results.push({ file, ...env.trace });
          if (!opts.json) ctx.stdout.write(`${file}: trace ${env.trace.id}, ${env.trace.records} reads, coverage ${(env.trace.coverage * 100).toFixed(1)}%\n`);
        }
        if (opts.json) ctx.stdout.write(JSON.stringify(results, null, 2) + '\n');
      }),
    );
}

/** NDJSON starts with `{` (after white space); anything else (RKTR, a zstd frame) is sent as bytes. */
function looksLikeNdjson(b: Buffer): boolean {
  for (const c of b) {
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b;
  }
  return false;
}
