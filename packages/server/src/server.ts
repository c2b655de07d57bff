import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Config } from './config/config.js';
import { resolveInstallationKey } from './config/installation-key.js';
import { createDb, type Db } from './db/dialect.js';
import { migrateToLatest } from './db/migrator.js';
import { bindRepositories } from './db/repositories/index.js';
import { systemClock, type Clock } from './domain/clock.js';
import { randomSecret, sha256Hex } from './domain/secrets.js';
import { SecretBox } from './domain/secret-box.js';
import { buildApp, loggerOptions, readChangelog } from './http/app.js';
import { helloHandler, type SelfCheck } from './task-handlers/hello.js';
import { webhookHandler, type WebhookHandlerOptions } from './task-handlers/webhook.js';
import { WEBHOOK_RETRY_POLICY } from './queue/retry-policy.js';
import { TaskQueue } from './queue/task-queue.js';
import { Worker, type TaskHandler } from './queue/worker.js';
import { cleanupHandler } from './task-handlers/cleanup.js';
import { deployHandler } from './task-handlers/deploy.js';
import { dltarHandler } from './task-handlers/dltar.js';
import type { ImportDeps } from './task-handlers/import-deps.js';
import { mkrawHandler } from './task-handlers/mkraw.js';
import { s3ImportScopeOf } from './pipeline/s3-import-scope.js';
import { EarlyBuilds } from './pipeline/early-build.js';
import { traceHandler } from './task-handlers/trace.js';
import { withPipelineEvents } from './task-handlers/pipeline-events.js';
import { createDepotOrigin, createOrigin, type OriginTuning } from './publish/origin.js';
import { BuildService } from './services/build.service.js';
import { UploadService } from './services/upload.service.js';
import { DepotService } from './services/depot.service.js';
import { DownloadKeyService } from './services/download-key.service.js';
import { appTracesPrefix, TraceService } from './services/trace.service.js';
import { depotTokenKey } from './domain/download-token.js';
import { AppService } from './services/app.service.js';
import { ConsumptionService } from './services/consumption.service.js';
import { DeploymentService, openDeploymentSettings } from './services/deployment.service.js';
import { createOriginFileOps, withImageCacheDrop, type OriginFileOps } from './services/published-files.js';
import type { BlobStore } from './storage/blob-store.js';
import { createBlobStore } from './storage/create-blob-store.js';
import { PrefixedBlobStore } from './storage/prefixed-blob-store.js';
import { AdminService } from './services/admin.service.js';
import { ApiKeyService } from './services/apikey.service.js';
import { AuthService, configuredAdminToken, hashedAdminToken, type AdminTokenVerifier } from './services/auth.service.js';
import type { ServiceDeps, ServiceHooks } from './services/context.js';
import { OrgService } from './services/org.service.js';
import { OrgPruneService } from './services/org-prune.service.js';
import { MaintenanceService } from './services/maintenance.service.js';
import { RoleService } from './services/role.service.js';
import { SubscriptionService } from './services/subscription.service.js';
import { TrainingService } from './services/training.service.js';
import { TaskService } from './services/task.service.js';
import { UserService } from './services/user.service.js';
import { currentVersions } from './version.js';
import { WEBHOOK_TASK_TYPE } from './webhooks/emit.js';
import { isPublicAddress } from './net/address-policy.js';
import pino, { type Logger } from 'pino';
import { Metrics } from './metrics/metrics.js';
import { blobStoreProbe, deploymentSelfChecks, healthReporter, type ReadinessCheck } from './probes.js';
import { Scheduler } from './scheduler.js';

export type { ReadinessCheck } from './probes.js';

export interface ServerOptions {
  config: Readonly<Config>;
  clock?: Clock;
  /** Pino options for the HTTP logger; default from config.logLevel. `false` silences it. */
  logger?: FastifyServerOptions['logger'];
  hooks?: Partial<ServiceHooks>;
  /** Run by `hello` with maintenance instead of the real ones (the blob store and each deployment's origin). */
  selfChecks?: SelfCheck[];
  /** Reported by /srv/v1/health instead of the real one (a probe of the blob store); the database is always pinged. */
  readinessChecks?: ReadinessCheck[];
  /** Extra task handlers by type (later issues). */
  handlers?: Record<string, TaskHandler>;
  /** Webhook delivery settings (tests shorten the retry schedule and the timeout, and resolve names their way). */
  webhooks?: Pick<WebhookHandlerOptions, 'backoff' | 'timeoutMs' | 'random' | 'issuer' | 'lookup'>;
  /** File operations on origins for apps and deployments (verify, remove published files); default: the real ones. */
  originFiles?: OriginFileOps;
  /** Called with the SQL text of every statement the server runs (tests count statements per request). */
  onQuery?: (sql: string) => void;
  /** Where the generated admin token is printed once (default: stdout). */
  print?: (line: string) => void;
}

export interface Server {
  app: FastifyInstance;
  db: Db;
  config: Readonly<Config>;
  worker: Worker | undefined;
  /** The task queue of this process (services, handlers and the worker share it). */
  queue: TaskQueue;
  /** The installation's blob store (uploads and the depot); closed by `close`. */
  blobStore: BlobStore;
  /** Images built while their tars were uploaded (ROCKIT_EARLY_BUILD; absent without workers). */
  earlyBuilds: EarlyBuilds | undefined;
  /** Stops taking requests, drains in-flight requests and running tasks, closes the database. Idempotent. */
  close(): Promise<void>;
}

/** Images built while their tars upload (pipeline/early-build.ts): only where mkraw runs too (this process has workers). */
function earlyBuildsOf(config: Config, mkrawWorkDir: string): EarlyBuilds | undefined {
  if (!config.worker.enabled || !config.imports.earlyBuild) return undefined;
  return new EarlyBuilds({ workDir: mkrawWorkDir, limits: { maxTotalBytes: config.imports.maxBuildBytes, maxFiles: config.imports.maxBuildFiles } });
}

const ADMIN_TOKEN_FILE = 'admin-token.sha256';
/** Where the depot (the publication layout of api.md §7.3) lives inside the blob store. */
const DEPOT_PREFIX = 'cdn';

/**
 * The admin-token verifier: ROCKIT_ADMIN_TOKEN when set; otherwise the SHA-256 kept in
 * `<dataDir>/admin-token.sha256`, generated (and printed once) on first start.
 */
export function resolveAdminToken(config: Readonly<Config>, print: (line: string) => void): AdminTokenVerifier {
  if (config.adminToken) return configuredAdminToken(config.adminToken);
  const file = path.join(config.dataDir, ADMIN_TOKEN_FILE);
  fs.mkdirSync(config.dataDir, { recursive: true });
  try {
    const stored = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(stored)) return hashedAdminToken(stored);
    throw new Error(`${file} is corrupt: delete it to generate a new admin token`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = randomSecret('rkadm_');
  // 'wx': never overwrite a token another process generated at the same moment.
  fs.writeFileSync(file, sha256Hex(token) + '\n', { flag: 'wx', mode: 0o600 });
  print(`Generated admin token (shown once; its hash is kept in ${file}): ${token}`);
  return hashedAdminToken(sha256Hex(token));
}

/** What buildServer wires services to: the blob store and depot, secrets, the SSRF guard and origin tuning, the task log. */
function openInfrastructure(config: Readonly<Config>, opts: ServerOptions, print: (line: string) => void) {
  // The blob store: uploads under imports/, the depot (published layout, served at /cdn/*) under cdn/.
  const s3BlobOptions = {
    ...(config.blob.s3Endpoint ? { endpoint: config.blob.s3Endpoint } : {}),
    ...(config.blob.s3Region ? { region: config.blob.s3Region } : {}),
    ...(config.blob.s3AccessKeyId ? { accessKeyId: config.blob.s3AccessKeyId } : {}),
    ...(config.blob.s3SecretAccessKey ? { secretAccessKey: config.blob.s3SecretAccessKey } : {}),
    forcePathStyle: config.blob.s3ForcePathStyle,
  };
  const blobStore = createBlobStore({ url: config.blob.url, ...s3BlobOptions });
  const depotOrigin = createDepotOrigin(blobStore, DEPOT_PREFIX);
  // mkraw's local work folder: scratch folders of running conversions and the image cache (per node).
  const mkrawWorkDir = path.join(config.dataDir, 'work', 'mkraw');
  const taskLog: Logger = opts.logger === false ? pino({ level: 'silent' }) : pino({ level: config.logLevel });
  // Seals deployment and subscription secrets at rest (ROCKIT_INSTALLATION_KEY or <dataDir>/installation.key).
  const installationKey = resolveInstallationKey(config, print);
  const secrets = new SecretBox(installationKey);
  // SSRF guard of import downloads, webhook targets and S3 deployment endpoints alike (ROCKIT_ALLOW_PRIVATE_ADDRESSES lifts it).
  const guard = config.allowPrivateAddresses ? {} : { addressPolicy: isPublicAddress };
  // Deployments' origins: S3 endpoints behind the same guard (errors say nothing of the target;
  // the detail is logged here); fs folders judged by real path, again at every opening.
  const originTuning: OriginTuning = {
    ...guard,
    fsPolicy: { dataDir: config.dataDir, ...(config.fsDeploymentRoots ? { roots: config.fsDeploymentRoots } : {}) },
    logS3Error: (detail) => taskLog.warn({ origin: detail }, 'S3 origin request failed'),
  };
  const s3ImportScope = s3ImportScopeOf(config.blob.url);
  return { blobStore, depotOrigin, mkrawWorkDir, taskLog, installationKey, secrets, guard, originTuning, s3ImportScope };
}

/** config → database → migrations → services → worker → app. Does not listen. */
export async function buildServer(opts: ServerOptions): Promise<Server> {
  const { config } = opts;
  const clock = opts.clock ?? systemClock;
  const print = opts.print ?? ((line: string) => process.stdout.write(line + '\n'));
  const adminToken = resolveAdminToken(config, print);
  const db = await createDb(config.database, opts.onQuery ? { onQuery: opts.onQuery } : {});
  try {
    await migrateToLatest(db.db, db.schema);
  } catch (e) {
    await db.close();
    throw e;
  }
  const { blobStore, depotOrigin, mkrawWorkDir, taskLog, installationKey, secrets, guard, originTuning, s3ImportScope } =
    openInfrastructure(config, opts, print);
  const maintenance = new MaintenanceService({
    db: db.db, clock, log: taskLog, mkrawWorkDir, uploadExpirySeconds: config.imports.uploadExpirySeconds,
    sweepOrphanUploads: (startedBeforeMs) => services.uploads.sweepOrphans(startedBeforeMs),
  });
  const sweepWork = () => maintenance.sweepWorkFolder();
  const orgPrune = new OrgPruneService({
    db: db.db, blobStore, depot: depotOrigin, mkrawWorkDir, secrets, originTuning, log: taskLog, ...(s3ImportScope ? { s3ImportScope } : {}),
  });
  // Tests that replace pruneOrgFiles replace the whole prune (no prepare phase).
  const hooks: ServiceHooks = {
    pruneOrgFiles: (orgName) => orgPrune.pruneOrgFiles(orgName),
    ...(opts.hooks?.pruneOrgFiles ? {} : { prepareOrgPrune: (orgId: string, orgName: string) => orgPrune.prepareOrgPrune(orgId, orgName) }),
    ...opts.hooks,
  };
  const deps: ServiceDeps = { db: db.db, repos: bindRepositories(db.capabilities), config, clock, hooks };
  // One queue for the process: services and handlers enqueue through it, the worker registers its wake-up with it.
  const queue = new TaskQueue({
    db: db.db, capabilities: db.capabilities, clock, defaultMaxAttempts: config.worker.maxAttempts,
    retryPolicies: { [WEBHOOK_TASK_TYPE]: WEBHOOK_RETRY_POLICY },
  });

  let worker: Worker | undefined;
  const earlyBuilds = earlyBuildsOf(config, mkrawWorkDir);
  const importDeps: ImportDeps = {
    db: db.db, clock, blobStore, depotPrefix: DEPOT_PREFIX, workDir: path.join(config.dataDir, 'work'), sweepWork,
    maxUploadBytes: config.imports.maxUploadBytes,
    buildLimits: { maxTotalBytes: config.imports.maxBuildBytes, maxFiles: config.imports.maxBuildFiles },
    gracePeriodSeconds: config.imports.gracePeriodSeconds,
    ...guard,
    // s3:// import URLs only in cluster mode, and only under each org's import prefix of the blob store.
    ...(s3ImportScope ? { s3ImportScope } : {}),
    openDeployment: (row) => createOrigin(openDeploymentSettings(row, secrets), originTuning),
    queue,
    ...(earlyBuilds ? { earlyBuilds } : {}),
  };
  // The real probes (api.md §3): the blob store and each deployment's origin (probes.ts).
  const blobStoreCheck = blobStoreProbe(blobStore);
  const defaultSelfChecks = deploymentSelfChecks(db.db, blobStoreCheck, (row) => createOrigin(openDeploymentSettings(row, secrets), originTuning));
  const readinessChecks: ReadinessCheck[] = opts.readinessChecks ?? [{ name: 'blob-store', check: blobStoreCheck }];
  // Metrics only when an operator asked for them (ROCKIT_METRICS_TOKEN): otherwise no hook, no cost.
  const metrics = config.metricsToken ? new Metrics(db.db, WEBHOOK_TASK_TYPE) : undefined;
  if (config.worker.enabled) {
    const injected = opts.selfChecks;
    const selfChecks = injected ? () => injected : defaultSelfChecks;
    worker = new Worker({
      queue, log: taskLog.child({ component: 'worker' }),
      handlers: {
        hello: helloHandler(selfChecks),
        dltar: withPipelineEvents('dltar', importDeps, dltarHandler(importDeps)),
        mkraw: withPipelineEvents('mkraw', importDeps, mkrawHandler(importDeps)),
        deploy: withPipelineEvents('deploy', importDeps, deployHandler(importDeps)),
        trace: withPipelineEvents('trace', importDeps, traceHandler(importDeps)),
        cleanup: cleanupHandler(importDeps),
        [WEBHOOK_TASK_TYPE]: webhookHandler({ db: db.db, clock, secrets, ...guard, ...opts.webhooks }),
        ...opts.handlers,
      },
      concurrency: config.worker.concurrency, pollMs: config.worker.pollMs, leaseMs: config.worker.leaseSeconds * 1000,
      ...(metrics ? { onTaskEnd: (end) => metrics.taskEnded(end) } : {}),
    });
  }

  const baseFiles = opts.originFiles ?? createOriginFileOps({ depot: depotOrigin, tuning: originTuning });
  const originFiles = withImageCacheDrop(baseFiles, mkrawWorkDir);
  const trainings = new TrainingService(deps, { queue });
  const depotStore = new PrefixedBlobStore(blobStore, DEPOT_PREFIX);
  const keys = new DownloadKeyService(deps, { secrets, depot: depotStore, depotTokenKey: depotTokenKey(installationKey) });
  const services = {
    auth: new AuthService(deps, adminToken),
    admin: new AdminService(deps, queue),
    orgs: new OrgService(deps),
    users: new UserService(deps),
    roles: new RoleService(deps),
    apiKeys: new ApiKeyService(deps),
    tasks: new TaskService(deps, { blobStore, queue, traces: (orgId, appName) => trainings.trigger(orgId, appName) }),
    builds: new BuildService(deps, {
      uploadExpirySeconds: config.imports.uploadExpirySeconds, queue, ...(s3ImportScope ? { s3ImportScope } : {}),
      depot: { blobStore, prefix: DEPOT_PREFIX + '/' },
    }),
    uploads: new UploadService(deps, {
      blobStore, maxUploadBytes: config.imports.maxUploadBytes, writerLeaseMs: config.worker.leaseSeconds * 1000,
      idleMs: config.imports.uploadIdleSeconds * 1000, stallMs: config.imports.uploadStallSeconds * 1000,
      queue, ...(earlyBuilds ? { earlyBuilds } : {}),
    }),
    depot: new DepotService(depotStore),
    keys,
    traces: new TraceService(deps, { blobStore, depot: depotStore, keys, queue }),
    subscriptions: new SubscriptionService(deps, { secrets, ...guard }),
    apps: new AppService(deps, {
      secrets, files: originFiles, queue,
      deleteTraceBlobs: async (orgId, appId) => void (await blobStore.deletePrefix(appTracesPrefix(orgId, appId))),
    }),
    deployments: new DeploymentService(deps, { secrets, files: originFiles, fsRoots: config.fsDeploymentRoots, ...guard }),
    consumption: new ConsumptionService(deps),
    trainings,
  };

  const health = healthReporter({ db: db.db, readinessChecks, worker: () => worker, concurrency: config.worker.concurrency });

  const app = await buildApp({
    config,
    services,
    health,
    versions: currentVersions(),
    logger: opts.logger ?? loggerOptions(config.logLevel),
    changelog: readChangelog(),
    ...(metrics ? { metrics } : {}),
  });
  // Work left by an earlier process of this node (killed mid-mkraw) and caches of deleted apps go before any task runs.
  if (worker) await sweepWork();
  worker?.start();

  // Housekeeping (purges and sweeps of what no request deletes): services/maintenance.service.ts.
  const scheduler = new Scheduler(maintenance);
  scheduler.start();

  const stopEarlyBuilds = async (): Promise<void> => earlyBuilds?.close();
  const close = closeOnce([() => scheduler.stop(), () => app.close(), () => worker?.stop({ drain: true }), stopEarlyBuilds, () => db.close(), () => blobStore.close()]);
  return { app, db, config, worker, queue, blobStore, earlyBuilds, close };
}

/** One close for all callers: the steps run in order, once; later calls share the first call's promise. */
function closeOnce(steps: Array<() => unknown>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      for (const step of steps) await step();
    })());
}

/** buildServer, then listen on config.host:config.port. Returns the server and the bound address. */
export async function startServer(opts: ServerOptions): Promise<Server & { address: string }> {
  const server = await buildServer(opts);
  try {
    const address = await server.app.listen({ host: opts.config.host, port: opts.config.port });
    return { ...server, address };
  } catch (e) {
    await server.close();
    throw e;
  }
}
