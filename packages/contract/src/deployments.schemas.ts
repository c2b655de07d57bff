import { Type, type Static } from '@sinclair/typebox';
import { Label, Name, Nullable, UnixSeconds } from './common.js';

/** Deployments = CDN origins (api.md §9.1). Secrets are write-only: in the inputs, never in DeploymentSchema. */

export const DeploymentType = Type.Union([Type.Literal('s3'), Type.Literal('fs')]);

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
export type S3Input = Static<typeof S3Input>;
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
export type DownloadAuthInput = Static<typeof DownloadAuthInput>;
export const OriginPrefix = Type.String({ maxLength: 500, description: 'relative path inside the origin; no "." or ".." segments' });
export const Verify = Type.Boolean({
  description: 'run a write/read/delete self-check against the origin first; when it fails nothing is stored (400 invalid-param, `param` s3 or fs)',
});

export const CreateDeploymentBody = Type.Object(
  {
    name: Name(),
    label: Type.Optional(Label),
    type: DeploymentType,
    originPrefix: Type.Optional(OriginPrefix),
    s3: Type.Optional(S3Input),
    fs: Type.Optional(FsInput),
    downloadAuth: Type.Optional(DownloadAuthInput),
    verify: Type.Optional(Verify),
  },
  { additionalProperties: false },
);
export type CreateDeploymentInput = Static<typeof CreateDeploymentBody>;

/** `null` removes an optional field; `s3` merges into the stored settings (so the secret need not be sent again). */
export const PatchDeploymentBody = Type.Object(
  {
    name: Name(),
    label: Type.Optional(Type.Union([Label, Type.Null()])),
    type: Type.Optional(DeploymentType),
    originPrefix: Type.Optional(Type.Union([OriginPrefix, Type.Null()])),
    s3: Type.Optional(Type.Union([S3Patch, Type.Null()])),
    fs: Type.Optional(Type.Union([FsInput, Type.Null()])),
    downloadAuth: Type.Optional(Type.Union([DownloadAuthInput, Type.Null()])),
    verify: Type.Optional(Verify),
  },
  { additionalProperties: false },
);
export type PatchDeploymentInput = Static<typeof PatchDeploymentBody>;

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
export type DeploymentDto = Static<typeof DeploymentSchema>;
