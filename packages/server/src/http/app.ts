import fs from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import type { Config } from '../config/config.js';
import type { AdminService } from '../services/admin.service.js';
import type { AppService } from '../services/app.service.js';
import type { ConsumptionService } from '../services/consumption.service.js';
import type { DeploymentService } from '../services/deployment.service.js';
import type { ApiKeyService } from '../services/apikey.service.js';
import type { AuthService } from '../services/auth.service.js';
import type { BuildService } from '../services/build.service.js';
import type { UploadService } from '../services/upload.service.js';
import type { DepotService } from '../services/depot.service.js';
import type { DownloadKeyService } from '../services/download-key.service.js';
import type { TraceService } from '../services/trace.service.js';
import type { OrgService } from '../services/org.service.js';
import type { RoleService } from '../services/role.service.js';
import type { SubscriptionService } from '../services/subscription.service.js';
import type { TrainingService } from '../services/training.service.js';
import type { TaskService } from '../services/task.service.js';
import type { UserService } from '../services/user.service.js';
import { registerAuth } from './plugins/auth.js';
import { AppError } from '../domain/errors.js';
import { clientErrorEnvelope, frameworkErrorEnvelope, registerErrorHandler } from './plugins/error-handler.js';
import { genRequestId, registerRequestId } from './plugins/request-id.js';
import { adminRoutes } from './routes/admin.routes.js';
import { apiKeyRoutes } from './routes/apikeys.routes.js';
import { appRoutes } from './routes/apps.routes.js';
import { consoleRoutes } from './routes/console.routes.js';
import { consumptionRoutes } from './routes/consumption.routes.js';
import { deploymentRoutes } from './routes/deployments.routes.js';
import { buildRoutes } from './routes/builds.routes.js';
import { cdnRoutes } from './routes/cdn.routes.js';
import { clientRoutes } from './routes/client.routes.js';
import { keyRoutes } from './routes/keys.routes.js';
import { loginRoutes } from './routes/login.routes.js';
import { orgRoutes } from './routes/orgs.routes.js';
import { roleRoutes } from './routes/roles.routes.js';
import { srvRoutes, type HealthReport, type Versions } from './routes/srv.routes.js';
import { subscriptionRoutes } from './routes/subscriptions.routes.js';
import { taskRoutes } from './routes/tasks.routes.js';
import { trainingRoutes } from './routes/trainings.routes.js';
import { userRoutes } from './routes/users.routes.js';
import { ErrorResponse } from './schemas/common.js';
import type { Metrics } from '../metrics/metrics.js';
import { registerMetrics } from './plugins/metrics.js';

export interface AppServices {
  auth: AuthService;
  admin: AdminService;
  orgs: OrgService;
  users: UserService;
  roles: RoleService;
  apiKeys: ApiKeyService;
  tasks: TaskService;
  apps: AppService;
  deployments: DeploymentService;
  consumption: ConsumptionService;
  builds: BuildService;
  uploads: UploadService;
  depot: DepotService;
  subscriptions: SubscriptionService;
  keys: DownloadKeyService;
  traces: TraceService;
  trainings: TrainingService;
}

export interface AppDeps {
  config: Readonly<Config>;
  services: AppServices;
  health(): Promise<HealthReport>;
  versions: Versions;
  /** Pino logger options, or false for none (tests). */
  logger: FastifyServerOptions['logger'];
  /** Markdown shown as the reference's description (the CHANGELOG). */
  changelog?: string;
  /** Set when ROCKIT_METRICS_TOKEN is: HTTP latencies are recorded and `GET /metrics` exists. */
  metrics?: Metrics;
}

/** Headers that carry secrets: never logged. */
export const REDACTED_HEADERS = [
  'x-rockit-admin-token',
  'x-rockit-besession-token',
  'x-rockit-beauth-token',
  'x-rockit-api-key',
  'x-rockit-download-token',
  'x-rockit-download-key',
  'authorization',
  'cookie',
] as const;

export function loggerOptions(level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: {
      // Headers logged on their own (the request serializer below logs none).
      paths: REDACTED_HEADERS.map((h) => `headers["${h}"]`),
      censor: '[redacted]',
    },
    serializers: {
      // Fastify's own request fields, with the URL's credentials masked: upload URLs and /cdn
      // downloads carry a token in the query string.
      req: (req: { method?: string; url?: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: req.method,
        url: redactUrl(req.url ?? ''),
        host: req.hostname,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
  };
}

/** Query parameters that are credentials (upload tokens, download tokens): their values are never logged. */
const SECRET_QUERY = /([?&](?:token|__token__|key|sig|signature|x-amz-signature|x-amz-credential)=)[^&#]*/gi;

/** The URL with the values of credential query parameters replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]');
}

/**
 * The address the server listens on as a base URL (the fallback of ROCKIT_PUBLIC_URL): the
 * configured host (a wildcard bind becomes 127.0.0.1) and the bound port (config's before listen).
 */
export function listenUrl(app: FastifyInstance, config: Pick<Config, 'host' | 'port'>): string {
  const bound = app.server.address();
  const port = bound !== null && typeof bound === 'object' ? bound.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' || config.host === '' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const UTF8 = /^utf-?8$/i;

/** The charset parameter of a Content-Type (quotes removed), or undefined when there is none. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Reads CHANGELOG.md from the repository root (src/http or dist/http → ../../../../). */
export function readChangelog(): string | undefined {
  try {
    return fs.readFileSync(new URL('../../../../CHANGELOG.md', import.meta.url), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The text that opens `/docs`: how to get going first (credentials, envelope, where the guides are), then the
 * user-facing changelog from its first release section on (its preamble says nothing a reader of the API needs).
 */
export function apiDescription(changelog: string | undefined): string {
  const intro = [
    'The HTTP API of ROCKIT Edge: import game builds, publish ROCKIT images and patches to CDN origins, and train FastStart.',
    '',
    '**Getting started.** The operator creates an organization with `POST /adm/v1/orgs` (header `x-rockit-admin-token`).',
    'Users log in with `POST /be/v1/login`, trade the session for a 5-minute auth token with `POST /be/v1/auth` and send it',
    'as `x-rockit-beauth-token` (or `Authorization: Bearer`); machine users send the API-key trio `x-rockit-orgname`,',
    '`x-rockit-username`, `x-rockit-api-key`. Launchers use `/client/v1` with a download key. The `rockit` command line',
    'does all of this for you (see the README).',
    '',
    'Every response carries `x-request-id`; errors use the envelope `{ "status": "error", "error", "message", ... }` with a',
    'stable `error` name.',
  ].join('\n');
  if (changelog === undefined) return `${intro}\n\n## Changelog\n\n(CHANGELOG.md not found next to this installation.)`;
  const first = changelog.search(/^## /m);
  const body = (first >= 0 ? changelog.slice(first) : changelog).replace(/^(#{2,3}) /gm, '#$1 ');
  return `${intro}\n\n## Changelog\n\n${body}`;
}

/**
 * The whole HTTP API as one Fastify instance: infrastructure plugins first (request id, errors,
 * validation, auth, OpenAPI), routes last. Validation is strict: bodies are never coerced and
 * unknown fields are refused; query strings are coerced (they are text) and arrays accept one value.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger,
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: deps.config.trustProxy,
    genReqId: genRequestId,
    requestIdHeader: false,
    return503OnClosing: true,
    // Errors before routing and on the raw socket answer in the envelope too (api.md §1.2).
    frameworkErrors: frameworkErrorEnvelope,
    clientErrorHandler: clientErrorEnvelope,
  }).withTypeProvider<TypeBoxTypeProvider>();

  const ajvBase = { strict: false, allErrors: false, removeAdditional: false, useDefaults: false } as const;
  const bodyAjv = new Ajv({ ...ajvBase, coerceTypes: false });
  const textAjv = new Ajv({ ...ajvBase, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));

  // JSON only: without a text/plain parser, other content types answer 415. An empty JSON body
  // counts as no body (so POST /adm/v1/ping with a JSON content type works; body routes answer
  // missing-param); otherwise Fastify's parser, with its prototype-poisoning protection.
  app.removeContentTypeParser('text/plain');
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    // The body is decoded as UTF-8: JSON sent in another declared charset is refused, never misread.
    const charset = charsetOf(req.headers['content-type']);
    if (charset !== undefined && !UTF8.test(charset)) {
      return done(new AppError('unsupported-media-type', `charset ${charset} is not supported: send JSON as UTF-8`), undefined);
    }
    if (body === '') return done(null, undefined);
    return defaultJson(req, body as string, done);
  });

  registerRequestId(app);
  registerErrorHandler(app);
  app.addSchema(ErrorResponse);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ROCKIT Edge API',
        version: deps.versions.edge,
        description: apiDescription(deps.changelog),
      },
      tags: [
        { name: 'admin', description: 'Admin API (x-rockit-admin-token)' },
        { name: 'srv', description: 'Monitoring and installers (no credentials)' },
        { name: 'auth', description: 'Login, auth tokens, logout, API keys' },
        { name: 'orgs', description: 'Organizations' },
        { name: 'users', description: 'Users and machine users (beUsers)' },
        { name: 'roles', description: 'Roles and permission bitmasks' },
        { name: 'tasks', description: 'Asynchronous tasks' },
        { name: 'apps', description: 'Apps (builds, images and patches)' },
        { name: 'deployments', description: 'Deployments = CDN origins (S3-compatible buckets or folders)' },
        { name: 'consumption', description: 'Storage figures' },
        { name: 'builds', description: 'Imports of native builds (dltar → mkraw → deploy)' },
        { name: 'cdn', description: 'The depot: published images, patches and release.json' },
        { name: 'subscriptions', description: 'Webhook and Slack subscriptions to pipeline events' },
        { name: 'keys', description: 'Download keys of apps (clients trade them for download tokens)' },
        { name: 'client', description: 'Client API of game launchers: download tokens, trace upload' },
        { name: 'traces', description: 'Play traces uploaded by clients' },
        { name: 'trainings', description: 'FastStart: trace processing per app (trainings)' },
      ],
      components: {
        securitySchemes: {
          adminToken: { type: 'apiKey', in: 'header', name: 'x-rockit-admin-token' },
          sessionToken: { type: 'apiKey', in: 'header', name: 'x-rockit-besession-token' },
          authToken: { type: 'apiKey', in: 'header', name: 'x-rockit-beauth-token' },
          bearer: { type: 'http', scheme: 'bearer', description: 'the auth token' },
          apiKeyOrg: { type: 'apiKey', in: 'header', name: 'x-rockit-orgname' },
          apiKeyUser: { type: 'apiKey', in: 'header', name: 'x-rockit-username' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-rockit-api-key' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // A person who opens the server's address in a browser lands on the reference.
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/docs', 302));

  registerAuth(app, deps.services.auth);
  if (deps.metrics && deps.config.metricsToken) registerMetrics(app, deps.metrics, deps.config.metricsToken);

  // Each route plugin gets only the services it calls.
  const s = deps.services;
  await app.register(srvRoutes, { health: deps.health, versions: deps.versions });
  await app.register(adminRoutes, { services: { admin: s.admin, orgs: s.orgs, tasks: s.tasks } });
  await app.register(loginRoutes, { services: { auth: s.auth } });
  await app.register(apiKeyRoutes, { services: { apiKeys: s.apiKeys } });
  await app.register(orgRoutes, { services: { orgs: s.orgs } });
  await app.register(userRoutes, { services: { users: s.users } });
  await app.register(roleRoutes, { services: { roles: s.roles } });
  await app.register(taskRoutes, { services: { tasks: s.tasks } });
  await app.register(appRoutes, { services: { apps: s.apps } });
  await app.register(deploymentRoutes, { services: { deployments: s.deployments } });
  await app.register(consumptionRoutes, { services: { consumption: s.consumption } });
  await app.register(buildRoutes, {
    services: { builds: s.builds, uploads: s.uploads },
    publicUrl: () => deps.config.publicUrl ?? listenUrl(app, deps.config),
  });
  await app.register(cdnRoutes, { services: { depot: s.depot, keys: s.keys } });
  await app.register(subscriptionRoutes, { services: { subscriptions: s.subscriptions } });
  await app.register(keyRoutes, { services: { keys: s.keys } });
  await app.register(clientRoutes, { services: { keys: s.keys, traces: s.traces }, maxTraceBytes: deps.config.faststart.maxTraceBytes });
  await app.register(trainingRoutes, { services: { trainings: s.trainings } });
  await app.register(consoleRoutes, { dir: deps.config.consoleDir, ...(deps.config.publicUrl ? { publicUrl: deps.config.publicUrl } : {}) });
  return app;
}
