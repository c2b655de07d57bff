import { Type, type Static } from '@sinclair/typebox';
import { AppName, Bytes, Label, Name, Nullable, UnixSeconds } from './common.js';

/** Apps (api.md §7.1) and consumption (§12). */

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
export type AppDto = Static<typeof AppSchema>;
/** Set while an app is in error state after a failed deploy; `since` in UNIX seconds; more detail fields may follow. */
export type AppErrorState = NonNullable<AppDto['error']> & { [detail: string]: unknown };

export const MaxBuilds = Type.Integer({ minimum: 1, maximum: 100, description: 'builds kept (1–100, default 5)' });
export const AppDeploymentsInput = Nullable(
  Type.Array(Name(), { maxItems: 1000, description: 'deployment names of the org; null or [] = every deployment of the org' }),
);

export const CreateAppBody = Type.Object(
  { name: AppName(), label: Label, maxBuilds: Type.Optional(MaxBuilds), deployments: Type.Optional(AppDeploymentsInput) },
  { additionalProperties: false },
);
export type CreateAppInput = Static<typeof CreateAppBody>;

export const PatchAppBody = Type.Object(
  {
    name: AppName(), label: Type.Optional(Label), maxBuilds: Type.Optional(MaxBuilds), deployments: Type.Optional(AppDeploymentsInput),
    iCurBuild: Type.Optional(Type.Integer({ minimum: 1, maximum: 999_999, description: 'a kept, ready build to make live' })),
    locked: Type.Optional(Type.Boolean({ description: 'true: refuse imports and set-live (409 app-locked) until unlocked; false: unlock (409 app-locked while a failed deploy holds the app: retry it)' })),
  },
  { additionalProperties: false },
);
export type PatchAppInput = Static<typeof PatchAppBody>;

export const CleanupSchema = Type.Object(
  {
    ok: Type.Boolean({ description: 'every published file could be removed' }),
    failures: Type.Array(Type.Object({ origin: Type.String({ description: '"depot" or a deployment name' }), message: Type.String() })),
  },
  { description: 'removal of published files, done after the records are deleted' },
);
export type CleanupDto = Static<typeof CleanupSchema>;

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
export type ConsumptionDto = Static<typeof ConsumptionSchema>;
