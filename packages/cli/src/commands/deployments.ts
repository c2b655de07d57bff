import { Option, type Command } from 'commander';
import {
  connect,
  processContext,
  runAction,
  withConnectionOptions,
  type CliContext,
  type ConnectionOptions,
} from '../api/context.js';
import { formatTable, writeList } from '../api/output.js';
import type { CreateDeploymentInput, DeploymentDto, SuccessBody } from '@rockit/contract';

export interface DeploymentCreateOptions extends ConnectionOptions {
  type: 'fs' | 's3';
  label?: string;
  originPrefix?: string;
  path?: string;
  endpoint?: string;
  region?: string;
  bucket?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
}

/**
 * Registers `rockit deployments create <name>` (`POST /be/v1/deployments`, api.md §9.1) and
 * `rockit deployments list`. The S3 secret may come from `ROCKIT_S3_SECRET_ACCESS_KEY` instead of
 * the command line (where other local users could read it in the process list).
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  const deployments = program.command('deployments').description('manage deployments (CDN origins)');

  withConnectionOptions(
    deployments
      .command('create <name>')
      .description('create a deployment: a folder (fs) or an S3-compatible bucket (s3) that releases are published to')
      .addOption(new Option('--type <type>', 'origin type').choices(['fs', 's3']).makeOptionMandatory())
      .option('--label <label>', 'display name')
      .option('--origin-prefix <prefix>', 'path prefix inside the origin')
      .option('--path <folder>', 'fs: folder to publish into (on the server)')
      .option('--endpoint <host>', 's3: endpoint without bucket, with region (e.g. s3.us-east-1.amazonaws.com)')
      .option('--region <region>', 's3: region')
      .option('--bucket <bucket>', 's3: bucket')
      .option('--access-key-id <id>', 's3: access key id')
      .option('--secret-access-key <secret>', 's3: secret access key (default: ROCKIT_S3_SECRET_ACCESS_KEY)')
      .option('--force-path-style', 's3: address the bucket in the path, not the host name')
      .option('--json', 'print the created deployment as JSON'),
  ).action((name: string, opts: DeploymentCreateOptions) =>
    runAction(ctx, opts.json, async () => {
      const body = deploymentBody(name, opts, ctx.env);
      const { client } = await connect(ctx, opts);
      const res = await client.post<SuccessBody & { deployment: DeploymentDto }>('/be/v1/deployments', body);
      if (opts.json) ctx.stdout.write(JSON.stringify(res.deployment, null, 2) + '\n');
      else ctx.stdout.write(`created deployment ${res.deployment?.name ?? name} (${body.type})\n`);
    }),
  );

  withConnectionOptions(
    deployments
      .command('list')
      .description('list the deployments of the organization')
      .option('--json', 'print the deployments as a JSON array'),
  ).action((opts: ConnectionOptions) =>
    runAction(ctx, opts.json, async () => {
      const { client } = await connect(ctx, opts);
      const list = await client.listAll<DeploymentDto>('/be/v1/deployments', 'deployments', { 'order[]': 'name' });
      writeList(ctx.stdout, opts.json, list, 'deployments', (items) =>
        formatTable(
          ['NAME', 'TYPE', 'LABEL', 'PREFIX', 'STATUS'],
          items.map((d) => [d.name, d.type, d.label ?? '', d.originPrefix ?? '', d.status ?? '-']),
        ),
      );
    }),
  );
}

/**
 * The request body for the options given. Throws naming every missing option of the chosen
 * type, and any option that belongs to the other type (a likely mistake, not something to drop).
 */
export function deploymentBody(name: string, opts: DeploymentCreateOptions, env: NodeJS.ProcessEnv): CreateDeploymentInput {
  const body: CreateDeploymentInput = { name, type: opts.type };
  if (opts.label !== undefined) body.label = opts.label;
  if (opts.originPrefix !== undefined) body.originPrefix = opts.originPrefix;
  const s3Flags: [keyof DeploymentCreateOptions, string][] = [
    ['endpoint', '--endpoint'],
    ['region', '--region'],
    ['bucket', '--bucket'],
    ['accessKeyId', '--access-key-id'],
    ['secretAccessKey', '--secret-access-key'],
    ['forcePathStyle', '--force-path-style'],
  ];
  if (opts.type === 'fs') {
    const stray = s3Flags.filter(([k]) => opts[k] !== undefined).map(([, f]) => f);
    if (stray.length > 0) throw new Error(`${stray.join(', ')} apply to --type s3 only`);
    if (!opts.path) throw new Error('--type fs needs --path');
    body.fs = { path: opts.path };
    return body;
  }
  if (opts.path !== undefined) throw new Error('--path applies to --type fs only');
  const secretAccessKey = opts.secretAccessKey ?? (env.ROCKIT_S3_SECRET_ACCESS_KEY || undefined);
  const missing = [
    !opts.endpoint && '--endpoint',
    !opts.region && '--region',
    !opts.bucket && '--bucket',
    !opts.accessKeyId && '--access-key-id',
    !secretAccessKey && '--secret-access-key',
  ].filter(Boolean);
  if (missing.length > 0 || !opts.endpoint || !opts.region || !opts.bucket || !opts.accessKeyId || !secretAccessKey) {
    throw new Error(`--type s3 needs ${missing.join(', ')}`);
  }
  body.s3 = {
    endpoint: opts.endpoint,
    region: opts.region,
    bucket: opts.bucket,
    accessKeyId: opts.accessKeyId,
    secretAccessKey,
    ...(opts.forcePathStyle ? { forcePathStyle: true } : {}),
  };
  return body;
}
