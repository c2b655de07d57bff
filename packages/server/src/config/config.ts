import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The installation's configuration: read once at start-up from command-line flags and ROCKIT_*
 * environment variables (flags win), validated, frozen. Nothing else reads process.env.
 */
export type DatabaseConfig =
  | { kind: 'sqlite'; file: string }
  | { kind: 'pg'; url: string; /** search_path; created if absent. */ schema?: string };

export interface Config {
  host: string;
  port: number;
  /**
   * ROCKIT_PUBLIC_URL: how clients reach this installation (http(s), no query or fragment, kept
   * without a trailing slash). Absolute URLs the API hands out (upload URLs) start with it, never
   * with the request's Host header. Unset: the listen address.
   */
  publicUrl?: string;
  dataDir: string;
  /** ROCKIT_CONSOLE_DIR: the built web console served at /apps/mc (default: packages/console/dist of this checkout). */
  consoleDir: string;
  database: DatabaseConfig;
  /** Set by ROCKIT_ADMIN_TOKEN; otherwise a token is generated on first start and its hash kept in dataDir. */
  adminToken?: string;
  /** ROCKIT_METRICS_TOKEN (32+ characters): `GET /metrics` answers Prometheus text to `Authorization: Bearer <it>`; unset: no metrics at all (404). */
  metricsToken?: string;
  /** Org whose Administrators may create and delete orgs through /be/v1/orgs (spec §4). */
  operatorOrg?: string;
  sessionSeconds: number;
  authSeconds: number;
  bodyLimitBytes: number;
  /** scrypt N for new password hashes (power of two). */
  scryptCost: number;
  /**
   * Throttles, counted in the database per fixed window of `windowSeconds`: failed logins per
   * (account, client address) first, per client address, and per account only at a much higher bound
   * (so nobody can lock a real user out from elsewhere); failed admin-token and API-key checks per
   * client address (`maxCredentialFailuresPerAddress`).
   */
  login: {
    maxFailuresPerUserAddress: number;
    maxFailuresPerUser: number;
    maxFailuresPerAddress: number;
    maxCredentialFailuresPerAddress: number;
    windowSeconds: number;
  };
  worker: { enabled: boolean; concurrency: number; pollMs: number; leaseSeconds: number; maxAttempts: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  trustProxy: boolean;
  /** The blob store (uploads, the depot): file:///folder (default `<dataDir>/blobs`) or s3://bucket/prefix. */
  blob: BlobConfig;
  imports: ImportsConfig;
  /** ROCKIT_INSTALLATION_KEY (64 hex digits or base64 of 32 bytes) sealing secrets at rest; generated into dataDir when unset. */
  installationKey?: string;
  /** ROCKIT_FS_DEPLOYMENT_ROOTS: folders `fs` deployments must lie in (unset: anywhere outside dataDir). */
  fsDeploymentRoots?: string[];
  /**
   * Let the server connect, on org users' behalf, to loopback/private/link-local addresses (off:
   * the SSRF guard): import download URLs, webhook/Slack subscription targets and S3 deployment
   * endpoints alike. Env ROCKIT_ALLOW_PRIVATE_ADDRESSES; ROCKIT_IMPORT_ALLOW_PRIVATE_URLS is its
   * deprecated alias (read when the new name is unset).
   */
  allowPrivateAddresses: boolean;
  /** Download keys, tokens and trace intake (api.md §9.2, §9.3). */
  faststart: FastStartConfig;
}

export interface FastStartConfig {
  /** Lifetime of a download token from POST /client/v1/auth (ROCKIT_DOWNLOAD_TOKEN_SECONDS). */
  downloadTokenSeconds: number;
  /** Largest trace body POST /client/v1/traces accepts, as sent (ROCKIT_MAX_TRACE_BYTES). */
  maxTraceBytes: number;
}

export interface BlobConfig {
  url: string;
  /** S3 only: endpoint (default AWS), region and credentials (ROCKIT_S3_*; none = the SDK's default chain). */
  s3Endpoint?: string;
  s3Region?: string;
  s3AccessKeyId?: string;
  s3SecretAccessKey?: string;
  s3ForcePathStyle: boolean;
}

export interface ImportsConfig {
  /** How long an upload URL of POST /be/v1/builds stays valid. */
  uploadExpirySeconds: number;
  /** Largest native build accepted, uploaded or downloaded. */
  maxUploadBytes: number;
  /**
   * Largest expanded build mkraw accepts: the sum of the file sizes inside the tar (after gzip/zstd)
   * (env ROCKIT_MAX_BUILD_BYTES; default ROCKIT_MAX_UPLOAD_BYTES). Refused while streaming, at the
   * first entry header past the limit.
   */
  maxBuildBytes: number;
  /** Most entries (files, folders, links) a build may hold (env ROCKIT_MAX_BUILD_FILES). */
  maxBuildFiles: number;
  /** An upload PUT whose body brings no byte for this long is ended; its lease is released (ROCKIT_UPLOAD_IDLE_SECONDS). */
  uploadIdleSeconds: number;
  /** A resume at the right offset takes over an upload PUT that has shown no progress for this long (ROCKIT_UPLOAD_STALL_SECONDS). */
  uploadStallSeconds: number;
  /** Files a new release no longer needs are removed this long after it is published (api.md §7.3). */
  gracePeriodSeconds: number;
  /**
   * A whole-tar PUT received by a process that runs workers also builds the image as the bytes arrive; mkraw
   * then takes it instead of building again (ROCKIT_EARLY_BUILD, default on).
   */
  earlyBuild: boolean;
}

/** Flags of `rockit-edge serve` / `migrate`; undefined = not given. */
export interface ConfigFlags {
  host?: string;
  port?: string | number;
  data?: string;
  worker?: boolean;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export const MIN_ADMIN_TOKEN_LENGTH = 32;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Builds the frozen Config. Throws ConfigError listing every problem found (not only the first).
 */
export function loadConfig(flags: ConfigFlags, rawEnv: Env): Readonly<Config> {
  const problems: string[] = [];
  // An empty variable counts as unset (`ROCKIT_X= cmd` is how shells unset for one command).
  const env: Env = Object.fromEntries(Object.entries(rawEnv).filter(([, v]) => v !== undefined && v !== ''));

  const parse = valueParsers(problems);
  const { int, bool } = parse;

  const host = flags.host ?? env.ROCKIT_HOST ?? '127.0.0.1';
  const port = int(flags.port !== undefined ? '--port' : 'ROCKIT_PORT', flags.port ?? env.ROCKIT_PORT, 8080, 0, 65535);
  const dataDir = path.resolve(flags.data ?? env.ROCKIT_DATA ?? './data');

  const database = databaseConfig(env, dataDir, problems);
  const publicUrl = env.ROCKIT_PUBLIC_URL === undefined ? undefined : parsePublicUrl(env.ROCKIT_PUBLIC_URL, problems);
  const { adminToken, metricsToken, operatorOrg } = operatorSettings(env, problems);

  const scryptCost = int('ROCKIT_SCRYPT_COST', env.ROCKIT_SCRYPT_COST, 16384, 1024, 1 << 20);
  if ((scryptCost & (scryptCost - 1)) !== 0) problems.push('ROCKIT_SCRYPT_COST must be a power of two');

  const installationKey = env.ROCKIT_INSTALLATION_KEY;
  if (installationKey !== undefined && !/^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/.test(installationKey.trim())) {
    problems.push('ROCKIT_INSTALLATION_KEY must be 32 bytes as 64 hex digits or base64');
  }
  const fsDeploymentRoots = env.ROCKIT_FS_DEPLOYMENT_ROOTS?.split(path.delimiter).filter((p) => p !== '');
  for (const root of fsDeploymentRoots ?? []) {
    if (!path.isAbsolute(root)) problems.push(`ROCKIT_FS_DEPLOYMENT_ROOTS must list absolute folders (got '${root}')`);
  }

  const logLevel = (env.ROCKIT_LOG_LEVEL ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`ROCKIT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const maxUploadBytes = int('ROCKIT_MAX_UPLOAD_BYTES', env.ROCKIT_MAX_UPLOAD_BYTES, 256 * 1024 ** 3, 1024, Number.MAX_SAFE_INTEGER);
  const config: Config = {
    host,
    port,
    ...(publicUrl ? { publicUrl } : {}),
    dataDir,
    consoleDir: path.resolve(env.ROCKIT_CONSOLE_DIR || fileURLToPath(new URL('../../../console/dist', import.meta.url))),
    database,
    ...(adminToken ? { adminToken } : {}),
    ...(operatorOrg ? { operatorOrg } : {}),
    ...(metricsToken ? { metricsToken } : {}),
    sessionSeconds: int('ROCKIT_SESSION_SECONDS', env.ROCKIT_SESSION_SECONDS, 24 * 3600, 60, 365 * 24 * 3600),
    authSeconds: int('ROCKIT_AUTH_SECONDS', env.ROCKIT_AUTH_SECONDS, 300, 10, 24 * 3600),
    bodyLimitBytes: int('ROCKIT_BODY_LIMIT_BYTES', env.ROCKIT_BODY_LIMIT_BYTES, 1024 * 1024, 1024, 1024 * 1024 * 1024),
    scryptCost,
    login: loginConfig(env, parse),
    worker: workerConfig(flags, env, parse),
    logLevel,
    trustProxy: bool('ROCKIT_TRUST_PROXY', env.ROCKIT_TRUST_PROXY, false),
    blob: {
      url: env.ROCKIT_BLOB_URL ?? pathToFileURL(path.join(dataDir, 'blobs')).href,
      ...(env.ROCKIT_S3_ENDPOINT ? { s3Endpoint: env.ROCKIT_S3_ENDPOINT } : {}),
      ...(env.ROCKIT_S3_REGION ? { s3Region: env.ROCKIT_S3_REGION } : {}),
      ...(env.ROCKIT_S3_ACCESS_KEY_ID ? { s3AccessKeyId: env.ROCKIT_S3_ACCESS_KEY_ID } : {}),
      ...(env.ROCKIT_S3_SECRET_ACCESS_KEY ? { s3SecretAccessKey: env.ROCKIT_S3_SECRET_ACCESS_KEY } : {}),
      s3ForcePathStyle: bool('ROCKIT_S3_FORCE_PATH_STYLE', env.ROCKIT_S3_FORCE_PATH_STYLE, false),
    },
    imports: importsConfig(env, parse, maxUploadBytes),
    allowPrivateAddresses:
      env.ROCKIT_ALLOW_PRIVATE_ADDRESSES !== undefined
        ? bool('ROCKIT_ALLOW_PRIVATE_ADDRESSES', env.ROCKIT_ALLOW_PRIVATE_ADDRESSES, false)
        : bool('ROCKIT_IMPORT_ALLOW_PRIVATE_URLS', env.ROCKIT_IMPORT_ALLOW_PRIVATE_URLS, false),
    faststart: {
      downloadTokenSeconds: int('ROCKIT_DOWNLOAD_TOKEN_SECONDS', env.ROCKIT_DOWNLOAD_TOKEN_SECONDS, 3600, 60, 7 * 24 * 3600),
      maxTraceBytes: int('ROCKIT_MAX_TRACE_BYTES', env.ROCKIT_MAX_TRACE_BYTES, 16 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    },
    ...(installationKey ? { installationKey: installationKey.trim() } : {}),
    ...(fsDeploymentRoots ? { fsDeploymentRoots: fsDeploymentRoots.map((p) => path.resolve(p)) } : {}),
  };
  const blobUrl = config.blob.url;
  if (!/^(file:\/\/\/|s3:\/\/)/.test(blobUrl)) problems.push('ROCKIT_BLOB_URL must be file:///absolute/folder or s3://bucket/prefix');
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** Integer and boolean readers that record a problem and fall back to the default on a bad value. */
interface ValueParsers {
  int(name: string, raw: string | number | undefined, def: number, min: number, max: number): number;
  bool(name: string, raw: string | undefined, def: boolean): boolean;
}

function valueParsers(problems: string[]): ValueParsers {
  return {
    int(name, raw, def, min, max) {
      if (raw === undefined || raw === '') return def;
      const s = String(raw).trim();
      const n = /^-?\d+$/.test(s) ? Number(s) : NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        problems.push(`${name} must be an integer in ${min}..${max} (got '${raw}')`);
        return def;
      }
      return n;
    },
    bool(name, raw, def) {
      if (raw === undefined || raw === '') return def;
      if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
      if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
      problems.push(`${name} must be true or false (got '${raw}')`);
      return def;
    },
  };
}

/** ROCKIT_DATABASE_URL (postgres:// or sqlite:<file>) and ROCKIT_DATABASE_SCHEMA; SQLite in the data folder by default. */
function databaseConfig(env: Env, dataDir: string, problems: string[]): DatabaseConfig {
  const dbUrl = env.ROCKIT_DATABASE_URL;
  if (!dbUrl) return { kind: 'sqlite', file: path.join(dataDir, 'rockit-edge.sqlite') };
  if (/^postgres(ql)?:\/\//.test(dbUrl)) {
    const schema = env.ROCKIT_DATABASE_SCHEMA;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      problems.push(`ROCKIT_DATABASE_SCHEMA must match ^[a-z_][a-z0-9_]{0,62}$ (got '${schema}')`);
    }
    return { kind: 'pg', url: dbUrl, ...(schema ? { schema } : {}) };
  }
  if (dbUrl.startsWith('sqlite:')) return { kind: 'sqlite', file: path.resolve(dbUrl.slice('sqlite:'.length)) };
  problems.push('ROCKIT_DATABASE_URL must start with postgres:// (or sqlite:<file>)');
  return { kind: 'sqlite', file: path.join(dataDir, 'rockit-edge.sqlite') };
}

/** The operator's credentials and org: ROCKIT_ADMIN_TOKEN, ROCKIT_METRICS_TOKEN, ROCKIT_OPERATOR_ORG. */
function operatorSettings(env: Env, problems: string[]): { adminToken?: string; metricsToken?: string; operatorOrg?: string } {
  const adminToken = env.ROCKIT_ADMIN_TOKEN;
  // Guessing the admin token is throttled per address only, so its length is the defence: 32+.
  if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    problems.push(`ROCKIT_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
  const metricsToken = env.ROCKIT_METRICS_TOKEN || undefined;
  // Like the admin token: compared, never throttled per client, so its length is the defence.
  if (metricsToken !== undefined && metricsToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    problems.push(`ROCKIT_METRICS_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
  const operatorOrg = env.ROCKIT_OPERATOR_ORG || undefined;
  if (operatorOrg !== undefined && !/^[A-Za-z0-9_]{2,50}$/.test(operatorOrg)) {
    problems.push('ROCKIT_OPERATOR_ORG must be an organization name (^[A-Za-z0-9_]{2,50}$)');
  }
  return { adminToken, metricsToken, operatorOrg };
}

function loginConfig(env: Env, { int }: ValueParsers): Config['login'] {
  return {
    maxFailuresPerUserAddress: int('ROCKIT_LOGIN_MAX_FAILURES', env.ROCKIT_LOGIN_MAX_FAILURES, 5, 1, 1000),
    maxFailuresPerUser: int('ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT', env.ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT, 100, 1, 100000),
    maxFailuresPerAddress: int('ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS', env.ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS, 50, 1, 100000),
    maxCredentialFailuresPerAddress: int('ROCKIT_AUTH_MAX_FAILURES_PER_ADDRESS', env.ROCKIT_AUTH_MAX_FAILURES_PER_ADDRESS, 20, 1, 100000),
    windowSeconds: int('ROCKIT_LOGIN_WINDOW_SECONDS', env.ROCKIT_LOGIN_WINDOW_SECONDS, 15 * 60, 1, 24 * 3600),
  };
}

/** The --worker / --no-worker flag wins over ROCKIT_NO_WORKER. */
function workerConfig(flags: ConfigFlags, env: Env, { int, bool }: ValueParsers): Config['worker'] {
  return {
    enabled: flags.worker ?? !bool('ROCKIT_NO_WORKER', env.ROCKIT_NO_WORKER, false),
    concurrency: int('ROCKIT_WORKER_CONCURRENCY', env.ROCKIT_WORKER_CONCURRENCY, 2, 1, 64),
    pollMs: int('ROCKIT_WORKER_POLL_MS', env.ROCKIT_WORKER_POLL_MS, 500, 10, 60_000),
    leaseSeconds: int('ROCKIT_LEASE_SECONDS', env.ROCKIT_LEASE_SECONDS, 60, 5, 3600),
    maxAttempts: int('ROCKIT_TASK_MAX_ATTEMPTS', env.ROCKIT_TASK_MAX_ATTEMPTS, 5, 1, 100),
  };
}

/** ROCKIT_MAX_BUILD_BYTES defaults to maxUploadBytes (ROCKIT_MAX_UPLOAD_BYTES, read before). */
function importsConfig(env: Env, { int, bool }: ValueParsers, maxUploadBytes: number): ImportsConfig {
  return {
    uploadExpirySeconds: int('ROCKIT_UPLOAD_EXPIRY_SECONDS', env.ROCKIT_UPLOAD_EXPIRY_SECONDS, 24 * 3600, 60, 30 * 24 * 3600),
    maxUploadBytes,
    maxBuildBytes: int('ROCKIT_MAX_BUILD_BYTES', env.ROCKIT_MAX_BUILD_BYTES, maxUploadBytes, 1024, Number.MAX_SAFE_INTEGER),
    maxBuildFiles: int('ROCKIT_MAX_BUILD_FILES', env.ROCKIT_MAX_BUILD_FILES, 2_000_000, 1, 100_000_000),
    uploadIdleSeconds: int('ROCKIT_UPLOAD_IDLE_SECONDS', env.ROCKIT_UPLOAD_IDLE_SECONDS, 60, 1, 3600),
    uploadStallSeconds: int('ROCKIT_UPLOAD_STALL_SECONDS', env.ROCKIT_UPLOAD_STALL_SECONDS, 10, 1, 3600),
    gracePeriodSeconds: int('ROCKIT_GRACE_PERIOD_SECONDS', env.ROCKIT_GRACE_PERIOD_SECONDS, 24 * 3600, 0, 365 * 24 * 3600),
    earlyBuild: bool('ROCKIT_EARLY_BUILD', env.ROCKIT_EARLY_BUILD, true),
  };
}

/** ROCKIT_PUBLIC_URL: an absolute http(s) URL without credentials, query or fragment; returned without a trailing slash. */
function parsePublicUrl(raw: string, problems: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    problems.push(`ROCKIT_PUBLIC_URL must be an absolute http(s) URL (got '${raw}')`);
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`ROCKIT_PUBLIC_URL must be http:// or https:// (got '${raw}')`);
  else if (url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) problems.push('ROCKIT_PUBLIC_URL must have no query or fragment');
  else if (url.username !== '' || url.password !== '') problems.push('ROCKIT_PUBLIC_URL must carry no credentials');
  else return url.href.replace(/\/+$/, '');
  return undefined;
}

function deepFreeze<T>(o: T): Readonly<T> {
  for (const v of Object.values(o as object)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(o);
}
