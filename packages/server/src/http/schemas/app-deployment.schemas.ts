import { Type } from '@sinclair/typebox';
import { AppName, Label, Name, UnixSeconds } from './common.js';

/** Schemas of apps (api.md §7.1), deployments (§9.1) and consumption (§12). Response schemas are the whitelist. */

const Bytes = (description: string) => Type.Integer({ minimum: 0, description: `${description} (bytes)` });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const AppSchema = Type.Object(
  {
    name: AppName(),
    label: Type.String(),
    maxBuilds: Type.Integer({ minimum: 1, maximum: 100 }),
    iCurBuild: Nullable(Type.Integer({ minimum: 1, description: 'newest published build; null before the first one' })),
    dxfName: Nullable(Type.String({ description: 'the image variant of the current build; null before the first one' })),
    builds: Type.Array(
      Type.Object({
        buildId: Type.Integer({ minimum: 1 }),
        buildName: Nullable(Type.String()),
        sizeBytes: Bytes('native size'),
        files: Type.Integer({ minimum: 0 }),
        created: UnixSeconds('imported'),
      }),
      { description: 'kept builds whose image exists, oldest first' },
    ),
    patches: Type.Array(Type.Object({ fromBuildId: Type.Integer(), toBuildId: Type.Integer(), sizeBytes: Bytes('patch size') })),
    deployments: Type.Array(Name(), { description: 'the explicit list; [] = every deployment of the org' }),
    processing: Type.Boolean(),
    exporting: Type.Boolean(),
    locked: Type.Boolean(),
    error: Nullable(
      Type.Object(
        { task: Type.String(), type: Type.String(), message: Type.String(), since: UnixSeconds('in error since') },
        { additionalProperties: true, description: 'set while the app is in error state after a failed deploy' },
      ),
    ),
    sizeBytes: Bytes('images and patches in the depot'),
    created: UnixSeconds('created'),
    updated: UnixSeconds('updated'),
  },
  { title: 'App' },
);

export const MaxBuilds = Type.Integer({ minimum: 1, maximum: 100, description: 'builds kept (1–100, default 5)' });
export const AppDeploymentsInput = Nullable(
  Type.Array(Name(), { maxItems: 1000, description: 'deployment names of the org; null or [] = every deployment of the org' }),
);

export const S3Input = Type.Object(
  {
    endpoint: Type.String({ minLength: 1, maxLength: 500, description: 'host (with region) or URL; names no bucket, e.g. s3.us-east-1.amazonaws.com; no private, loopback or link-local address (ROCKIT_ALLOW_PRIVATE_ADDRESSES)' }),
    region: Type.String({ minLength: 1, maxLength: 100 }),
    bucket: Type.String({ minLength: 3, maxLength: 63 }),
    accessKeyId: Type.String({ minLength: 1, maxLength: 256 }),
    secretAccessKey: Type.String({ minLength: 1, maxLength: 512, description: 'write-only: stored encrypted, never returned' }),
    forcePathStyle: Type.Optional(Type.Boolean({ description: 'path-style addressing (most non-AWS stores)' })),
  },
  { additionalProperties: false },
);
export const S3Patch = Type.Partial(S3Input, { additionalProperties: false, description: 'merged into the stored settings; leave secretAccessKey out to keep it' });
export const FsInput = Type.Object(
  { path: Type.String({ minLength: 1, maxLength: 1024, description: 'absolute folder on the server' }) },
  { additionalProperties: false },
);
export const DownloadAuthInput = Type.Object(
  {
    type: Type.Literal('token'),
    key: Type.String({ minLength: 16, maxLength: 512, description: 'write-only: the key that signs download tokens; stored encrypted, never returned' }),
  },
  { additionalProperties: false },
);
export const OriginPrefix = Type.String({ maxLength: 500, description: 'relative path inside the origin; no "." or ".." segments' });
export const Verify = Type.Boolean({
  description: 'run a write/read/delete self-check against the origin first; when it fails nothing is stored (400 invalid-param, `param` s3 or fs)',
});

export const DeploymentSchema = Type.Object(
  {
    name: Name(),
    label: Type.String(),
    type: Type.Union([Type.Literal('s3'), Type.Literal('fs')]),
    originPrefix: Nullable(Type.String()),
    s3: Nullable(
      Type.Object({
        endpoint: Type.String(), region: Type.String(), bucket: Type.String(), accessKeyId: Type.String(), forcePathStyle: Type.Boolean(),
      }),
    ),
    fs: Nullable(Type.Object({ path: Type.String() })),
    downloadAuth: Nullable(Type.Object({ type: Type.Literal('token') })),
    status: Type.Union([Type.Literal('ok'), Type.Literal('error')], { description: 'last observed health (verify or publish)' }),
    message: Type.String(),
    checked: Nullable(UnixSeconds('status last observed')),
    created: UnixSeconds('created'),
    updated: UnixSeconds('updated'),
  },
  { title: 'Deployment', description: 'secrets (s3.secretAccessKey, downloadAuth.key) are write-only' },
);

export const CleanupSchema = Type.Object(
  {
    ok: Type.Boolean({ description: 'every published file could be removed' }),
    failures: Type.Array(Type.Object({ origin: Type.String({ description: '"depot" or a deployment name' }), message: Type.String() })),
  },
  { description: 'removal of published files, done after the records are deleted' },
);

export const ConsumptionSchema = Type.Object(
  {
    apps: Type.Array(
      Type.Object({
        appName: AppName(),
        buildsBytes: Bytes('native builds held while being imported'),
        imagesBytes: Bytes('images of the kept builds'),
        patchesBytes: Bytes('patches'),
        tracesBytes: Bytes('play traces'),
      }),
    ),
    deployments: Type.Array(Type.Object({ name: Name(), publishedBytes: Bytes('published on the deployment') })),
    months: Type.Optional(
      Type.Array(
        Type.Object({
          month: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}$', description: 'UTC month, YYYY-MM' }),
          builds: Type.Integer({ description: 'kept builds created in the month' }),
          buildsBytes: Bytes('native size of those builds'),
          imagesBytes: Bytes('their images'),
          patchesBytes: Bytes('patches created in the month'),
          traces: Type.Integer({ description: 'stored traces received in the month' }),
          tracesBytes: Bytes('their size'),
        }),
        { description: 'with the `months` query: the last N months, oldest first (what the records still hold, by creation month)' },
      ),
    ),
  },
  { title: 'Consumption' },
);

export { Label };
