// Wire types of the ROCKIT Edge backend API (spec/api.md) as the CLI reads them.
// Only the fields the CLI uses are required; everything else the server adds is kept as-is
// (the index signatures) so `--json` output passes it through unchanged.

/** Every success body: `status: "success"` plus named payload keys (api.md §1.2). */
export interface SuccessEnvelope {
  status: 'success';
  [key: string]: unknown;
}

/** Every error body (api.md §1.2); `error` is the stable machine name. */
export interface ErrorEnvelope {
  status: 'error';
  error: string;
  message: string;
  param?: string;
  requestId?: string;
  [key: string]: unknown;
}

/** A list answer (api.md §1.3); the items sit under the resource's plural name. */
export interface ListEnvelope {
  status: 'success';
  total: number;
  offset: number;
  limit: number;
  [key: string]: unknown;
}

/** A token with its expiry in UNIX seconds on the server's clock. */
export interface TokenInfo {
  token: string;
  expires: number;
}

export interface LoginResponse extends SuccessEnvelope {
  session: TokenInfo;
  user?: Record<string, unknown>;
  permissions?: Record<string, number>;
}

export interface AuthResponse extends SuccessEnvelope {
  auth: TokenInfo;
}

export interface AppBuild {
  buildId: number;
  buildName?: string | null;
  sizeBytes?: number;
  files?: number;
  created?: number;
  [key: string]: unknown;
}

export interface AppPatch {
  fromBuildId: number;
  toBuildId: number;
  sizeBytes?: number;
  [key: string]: unknown;
}

export interface AppError {
  task?: string;
  type?: string;
  message?: string;
  since?: number;
  [key: string]: unknown;
}

export interface App {
  name: string;
  label?: string;
  maxBuilds?: number;
  iCurBuild?: number | null;
  dxfName?: string | null;
  builds?: AppBuild[];
  patches?: AppPatch[];
  deployments?: string[];
  processing?: boolean;
  exporting?: boolean;
  locked?: boolean;
  error?: AppError | null;
  sizeBytes?: number;
  created?: number;
  updated?: number;
  [key: string]: unknown;
}

export const TASK_TYPES = ['dltar', 'mkraw', 'deploy', 'trace', 'hello', 'cleanup'] as const;
export const TASK_STATUSES = ['submitted', 'running', 'succeeded', 'failed', 'expired', 'canceled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses after which a task never changes again on its own (a retry makes a new run). */
export const FINAL_TASK_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'expired', 'canceled']);

/** A task's error with the documented detail fields (api.md §8). */
export interface TaskError {
  message?: string;
  httpStatus?: number;
  exitCode?: number;
  sizeBytesActual?: number;
  sizeBytesExpected?: number;
  fileReadFailed?: { filename?: string; typeExpected?: string; typeDetected?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface TaskWarning {
  code?: string;
  message?: string;
  acknowledged?: boolean;
}

export interface Task {
  name: string;
  type: string;
  status: string;
  appName?: string | null;
  buildId?: number | null;
  progress?: number | null;
  attempts?: number;
  warnings?: TaskWarning[];
  error?: TaskError | null;
  result?: Record<string, unknown> | null;
  created?: number;
  started?: number | null;
  ended?: number | null;
  [key: string]: unknown;
}

/** `POST /be/v1/builds` without `url` (api.md §7.2). */
export interface BuildUploadResponse extends SuccessEnvelope {
  task: Task;
  upload: { url: string; method: 'PUT'; expires: number };
}

/** `POST /be/v1/deployments` body (api.md §9.1). */
export interface DeploymentCreate {
  name: string;
  label?: string;
  type: 's3' | 'fs';
  originPrefix?: string;
  s3?: {
    endpoint: string;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle?: boolean;
  };
  fs?: { path: string };
}

export interface Deployment {
  name: string;
  label?: string;
  type: string;
  originPrefix?: string | null;
  status?: string;
  message?: string | null;
  [key: string]: unknown;
}
