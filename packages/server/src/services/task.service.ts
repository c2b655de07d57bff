import { findOrgTask, listOrgTasks } from '../db/repositories/task.repository.js';
import type { TaskStatus } from '../db/database.js';
import { notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { findTask } from '../queue/tasks.queue.js';
import { requireAdmin, requirePermission, type Principal, type ServiceDeps } from './context.js';
import { toTaskDto, type TaskDto } from './mappers.js';

export interface TaskFilterInput {
  appName?: string;
  type?: string;
  status?: TaskStatus;
  /** UNIX seconds. */
  since?: number;
  until?: number;
}

const TASK_LIST = {
  orderable: ['name', 'type', 'status', 'appName', 'created', 'started', 'ended'],
  fields: ['name', 'type', 'status', 'appName', 'buildId', 'progress', 'attempts', 'warnings', 'error', 'result', 'created', 'started', 'ended'],
  defaultOrder: [{ field: 'created', desc: true }],
} as const;
const TASK_COLUMNS: Record<string, string> = {
  name: 'name', type: 'type', status: 'status', appName: 'app_name', created: 'created_ms', started: 'started_ms', ended: 'ended_ms',
};

/** Tasks of the caller's org (`tasks.read`); org-less tasks (hello) are visible to the admin only. */
export class TaskService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(auth: Principal, f: TaskFilterInput, raw: RawListQuery): Promise<Page<TaskDto>> {
    const user = requirePermission(auth, 'tasks', 'read');
    const q = parseListQuery(raw, TASK_LIST);
    const { total, rows } = await listOrgTasks(
      this.deps.db,
      user.orgId,
      {
        appName: f.appName, type: f.type, status: f.status,
        sinceMs: f.since !== undefined ? f.since * 1000 : undefined,
        untilMs: f.until !== undefined ? f.until * 1000 : undefined,
      },
      { offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: TASK_COLUMNS[o.field], desc: o.desc })) },
    );
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toTaskDto(r), q.fields)) };
  }

  async get(auth: Principal, name: string): Promise<TaskDto> {
    const user = requirePermission(auth, 'tasks', 'read');
    const row = await findOrgTask(this.deps.db, user.orgId, name);
    if (!row) throw notFound('task', name);
    return toTaskDto(row);
  }

  /** Any task, for the installation admin (GET /adm/v1/tasks/{name}). */
  async getAsAdmin(auth: Principal, name: string): Promise<TaskDto> {
    requireAdmin(auth);
    const row = await findTask(this.deps.db, name);
    if (!row) throw notFound('task', name);
    return toTaskDto(row);
  }
}
