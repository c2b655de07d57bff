import { decodeManifest, encodeTrace, IMAGE_JSON_NAME, parseAnyTrace, parseImageJson, summarizeTrace, TraceFormatError, type Trace } from '@rockit/engine';
import type { TraceDto } from '@rockit/contract';
import { findApp, findAppById } from '../db/repositories/app.repository.js';
import { findBuild } from '../db/repositories/build.repository.js';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { pageTraces, recordTrace } from '../db/repositories/trace.repository.js';
import type { TraceRow } from '../db/faststart-tables.js';
import type { TaskRow } from '../db/database.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, invalidParam, missingParam, notFound } from '../domain/errors.js';
import { sortableId } from '../domain/ids.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { imagePrefix } from '../publish/layout.js';
import type { BlobStore } from '../storage/blob-store.js';
import { isStorageError } from '../storage/storage-error.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';
import type { ClientIdentity, DownloadKeyService } from './download-key.service.js';
import { startAutoTraining } from './training.service.js';
import type { TaskQueue } from '../queue/task-queue.js';

export interface TraceCredentials {
  /** A download token of POST /client/v1/auth. */
  token?: string;
  /** An access key of POST /be/v1/keys. */
  key?: string;
}

const TRACE_LIST = {
  orderable: ['created', 'records', 'coverage', 'sizeBytes'],
  fields: ['id', 'appName', 'buildId', 'dxfName', 'sessionId', 'firstSession', 'records', 'readBytes', 'durationMs', 'coverage', 'sizeBytes', 'created'],
  defaultOrder: [{ field: 'created', desc: true }],
} as const;
const TRACE_COLUMNS: Record<string, string> = { created: 'created_ms', records: 'records', coverage: 'coverage', sizeBytes: 'size_bytes' };

/** Decoded manifests kept (file sizes by path), by manifest sha256. */
const MANIFEST_CACHE_ENTRIES = 32;

/** Blob key of a stored trace (docs: TRACES-TABLE; the binary trace format, zstd body). */
export const traceBlobKey = (orgId: string, appId: string, traceId: string): string => `traces/${orgId}/${appId}/${traceId}.rktr`;
export const appTracesPrefix = (orgId: string, appId: string): string => `traces/${orgId}/${appId}/`;
export const orgTracesPrefix = (orgId: string): string => `traces/${orgId}/`;

export interface TraceServiceOptions {
  blobStore: BlobStore;
  /** The depot (blob store under its prefix): image.json and manifests of builds. */
  depot: BlobStore;
  keys: DownloadKeyService;
  /** The task queue: woken after automatic trace processing was submitted (api.md §10). */
  queue: TaskQueue;
}

/**
 * Trace intake (`POST /client/v1/traces`, api.md §9.3) and the list of an app's traces
 * (`GET /be/v1/traces`, `trainings.read`). A trace is stored only for the app its credential
 * names, after decoding, validation and measuring its coverage of the build.
 */
export class TraceService {
  private readonly manifests = new Map<string, Map<string, number>>();

  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: TraceServiceOptions,
  ) {}

  /**
   * Stores one uploaded trace. `known`: the caller already identified the credential (the route does
   * so before the body is read, so that nobody without a credential makes the server read a body).
   */
  async intake(cred: TraceCredentials, body: Buffer, clientAddress: string, known?: ClientIdentity): Promise<{ id: string; records: number; coverage: number }> {
    const who = known ?? (await this.identify(cred, clientAddress));
    if (body.length === 0) throw missingParam('body');
    let trace: Trace;
    try {
      trace = parseAnyTrace(body, { maxFileBytes: this.deps.config.faststart.maxTraceBytes });
    } catch (e) {
      if (e instanceof TraceFormatError) throw new AppError('invalid-param', `the trace is refused: ${e.message}`, { param: 'body', reason: e.code });
      throw e;
    }
    const h = trace.header;
    if (h.orgName !== who.orgName || h.appName !== who.appName) {
      throw new AppError('forbidden', `the trace names ${h.orgName}/${h.appName}; this credential is for ${who.orgName}/${who.appName}`);
    }
    if (trace.records.length === 0) throw invalidParam('records', 'is empty: a trace needs at least one read');

    const { db, clock } = this.deps;
    const app = await findApp(db, who.orgId, who.appName);
    if (!app || app.id !== who.appId) throw new AppError('token-invalid', 'the app of this credential no longer exists');
    const buildId = h.buildId === 0 ? app.i_cur_build : h.buildId;
    if (buildId === null) throw new AppError('invalid-state', `app '${app.name}' has no published build to measure the trace against`);
    const build = await findBuild(db, app.id, buildId);
    if (!build || build.state !== 'ready') throw invalidParam('build', `${buildId} is not a build of app '${app.name}' (deleted or never imported)`);
    const dxfName = h.dxfName !== '' ? h.dxfName : (buildId === app.i_cur_build ? app.dxf_name : build.dxf_name) ?? '';
    const files = await this.filesOf(who.orgName, who.appName, buildId, dxfName);

    const summary = summarizeTrace(trace);
    let covered = 0;
    for (const r of trace.records) {
      const size = files.get(r.path);
      if (size === undefined || r.offsetBytes >= size) continue;
      covered += Math.min(r.offsetBytes + r.lengthBytes, size) - r.offsetBytes;
    }
    if (covered === 0) throw invalidParam('records', `no read falls on build ${buildId} (${dxfName}): paths or offsets outside the build`);
    const coverage = Math.round((covered / summary.bytesRead) * 10_000) / 10_000;

    const now = clock.now();
    const id = `tr_${sortableId(now)}`;
    const stored = Buffer.from(encodeTrace({ header: { ...h, buildId, dxfName }, records: trace.records }, { compress: true }));
    const key = traceBlobKey(who.orgId, who.appId, id);
    await this.opts.blobStore.put(key, stored, { contentType: 'application/octet-stream' });
    let training: TaskRow | undefined;
    try {
      await db.transaction().execute(async (trx) => {
        const still = await findAppById(trx, who.appId);
        if (!still) throw notFound('app', who.appName);
        await recordTrace(trx, {
          id, org_id: who.orgId, app_id: who.appId, build_id: buildId, dxf_name: dxfName, session_id: h.sessionId,
          first_session: h.firstSession ? 1 : 0, records: summary.records, bytes_read: summary.bytesRead, duration_ms: summary.durationMs,
          coverage, blob_key: key, size_bytes: stored.length, created_ms: now,
        });
        // nTracesReliable new traces of an `auto` training start trace processing (in this transaction).
        training = await startAutoTraining(this.opts.queue, trx, { orgId: who.orgId, appId: who.appId, nowMs: now });
      });
    } catch (e) {
      await this.opts.blobStore.delete(key).catch(() => undefined);
      throw e;
    }
    // After the commit, and only when trace processing was submitted (most traces start none).
    if (training) this.opts.queue.wake();
    return { id, records: summary.records, coverage };
  }

  async list(auth: Principal, filter: { appName?: string }, raw: RawListQuery): Promise<Page<TraceDto>> {
    const user = requirePermission(auth, 'trainings', 'read');
    if (filter.appName === undefined) throw missingParam('appName');
    const q = parseListQuery(raw, TRACE_LIST);
    const app = await findApp(this.deps.db, user.orgId, filter.appName);
    if (!app) throw notFound('app', filter.appName);
    const { total, rows } = await pageTraces(this.deps.db, user.orgId, app.id, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: TRACE_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toTraceDto(r, app.name), q.fields)) };
  }

  /** The app a download token or an access key lets in (401s of api.md §1.2 otherwise; 429 after too many wrong keys). */
  async identify(cred: TraceCredentials, clientAddress: string): Promise<ClientIdentity> {
    if (cred.token !== undefined && cred.key !== undefined) throw new AppError('conflicting-credentials', 'send either a download token or an access key, not both');
    if (cred.key !== undefined) {
      const who = await this.opts.keys.identifyKeyThrottled(cred.key, clientAddress);
      if (!who) throw new AppError('invalid-credentials', 'the access key is wrong');
      return who;
    }
    if (cred.token === undefined || cred.token === '') {
      throw new AppError('token-missing', 'send a download token (x-rockit-download-token) or an access key (x-rockit-download-key)');
    }
    const check = this.opts.keys.checkToken(cred.token);
    if (!check.ok) {
      if (check.reason === 'expired') throw new AppError('token-expired', 'the download token has expired');
      throw new AppError('token-invalid', 'the download token is invalid');
    }
    const m = /^\/cdn\/dxf\/([A-Za-z0-9_]{2,50})\/([A-Za-z0-9_]{2,50})\/\*$/.exec(check.fields.acl[0] ?? '');
    if (!m) throw new AppError('token-invalid', 'the download token is not for an app');
    const org = await findOrgByName(this.deps.db, m[1]);
    const app = org ? await findApp(this.deps.db, org.id, m[2]) : undefined;
    if (!org || !app) throw new AppError('token-invalid', 'the app of this download token no longer exists');
    return { orgId: org.id, orgName: org.name, appId: app.id, appName: app.name };
  }

  /** Regular files of the build's image (size by path), from its manifest in the depot. */
  private async filesOf(orgName: string, appName: string, buildId: number, dxfName: string): Promise<Map<string, number>> {
    let folder: string;
    try {
      folder = imagePrefix(orgName, appName, buildId, dxfName);
    } catch {
      throw invalidParam('dxf', `'${dxfName}' is not an image name`);
    }
    const read = async (key: string, max: number): Promise<Buffer | undefined> => {
      try {
        const got = await this.opts.depot.get(key);
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of got.body) {
          n += (c as Buffer).length;
          if (n > max) throw new Error(`${key} is larger than expected`);
          chunks.push(c as Buffer);
        }
        return Buffer.concat(chunks);
      } catch (e) {
        if (isStorageError(e) && (e.code === 'not-found' || e.code === 'invalid-key')) return undefined;
        throw e;
      }
    };
    const pointer = await read(folder + IMAGE_JSON_NAME, 1 << 20);
    if (!pointer) throw invalidParam('dxf', `image ${dxfName} of build ${buildId} is not in the depot (deleted or never published)`);
    const imageJson = parseImageJson(pointer);
    const cached = this.manifests.get(imageJson.manifest.sha256);
    if (cached) return cached;
    const bytes = await read(folder + imageJson.manifest.name, Math.max(imageJson.manifest.sizeBytes, 1));
    if (!bytes) throw invalidParam('dxf', `the manifest of image ${dxfName} is missing from the depot`);
    const manifest = decodeManifest(bytes, imageJson.manifest.name);
    const byPath = new Map(manifest.files.map((f) => [f.path, f]));
    const sizes = new Map<string, number>();
    for (const f of manifest.files) {
      if (f.type === 'file') sizes.set(f.path, f.sizeBytes);
      else if (f.type === 'hardlink') sizes.set(f.path, byPath.get(f.linkTarget)?.sizeBytes ?? 0);
    }
    if (this.manifests.size >= MANIFEST_CACHE_ENTRIES) this.manifests.delete(this.manifests.keys().next().value!);
    this.manifests.set(imageJson.manifest.sha256, sizes);
    return sizes;
  }
}

export const toTraceDto = (r: TraceRow, appName: string): TraceDto => ({
  id: r.id,
  appName,
  buildId: r.build_id,
  dxfName: r.dxf_name,
  sessionId: r.session_id,
  firstSession: r.first_session !== 0,
  records: r.records,
  readBytes: r.bytes_read,
  durationMs: r.duration_ms,
  coverage: r.coverage,
  sizeBytes: r.size_bytes,
  created: toUnixSeconds(r.created_ms),
});
