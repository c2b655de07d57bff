import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from './client.js';
import { followPipeline, TaskFailedError } from './follow-tasks.js';
import { fail, ok, startStandIn, type Handler, type StandIn } from './test-support/stand-in-server.js';
import type { TaskDto } from '@rockit/contract';

let standIn: StandIn | null = null;
afterEach(async () => {
  await standIn?.close();
  standIn = null;
});
async function client(handler: Handler): Promise<ApiClient> {
  standIn = await startStandIn(handler);
  return new ApiClient({ server: standIn.url, credentials: { kind: 'none' }, sleep: async () => {} });
}
/** A task as the API returns it: the given fields over neutral defaults. */
const task = (t: Partial<TaskDto> & Pick<TaskDto, 'name' | 'type'>): TaskDto => ({
  status: 'submitted', appName: null, buildId: null, progress: 0, attempts: 0, warnings: [], error: null, result: null, created: 0, started: null, ended: null, ...t,
});
const dltar = (status: TaskDto['status']): TaskDto => task({ name: 't_dl', type: 'dltar', status, appName: 'demo', buildId: 4, created: 100 });

describe('followPipeline', () => {
  it('gives up when the next stage never appears, after the allowed polls', async () => {
    const c = await client((req) =>
      req.path === '/be/v1/tasks' ? ok({ total: 0, offset: 0, limit: 100, tasks: [] }) : req.path === '/be/v1/tasks/t_dl' ? ok({ task: dltar('succeeded') }) : fail(404, 'not-found', ''),
    );
    await expect(followPipeline({ client: c, appName: 'demo', first: dltar('running'), pollIntervalMs: 0, sleep: async () => {}, maxAppearPolls: 3 })).rejects.toThrow(
      'no mkraw task appeared for app demo after dltar t_dl succeeded',
    );
    const lists = standIn!.requests.filter((r) => r.path === '/be/v1/tasks');
    expect(lists).toHaveLength(3);
    expect(Object.fromEntries(lists[0].query)).toEqual({ appName: 'demo', type: 'mkraw', since: '100', 'order[]': 'created', limit: '100' });
  });

  it('picks the newest follow-up created while the stage ran (an earlier import\'s comes before it)', async () => {
    const mk = (name: string, created: number): TaskDto => task({ name, type: 'mkraw', status: 'succeeded', appName: 'demo', buildId: null, created, ended: created + 1 });
    const dp = task({ name: 't_dp', type: 'deploy', status: 'succeeded', appName: 'demo', buildId: null, created: 111 });
    const c = await client((req) =>
      req.path === '/be/v1/tasks'
        ? ok({ total: 3, offset: 0, limit: 100, tasks: req.query.get('type') === 'mkraw' ? [mk('t_A', 104), mk('t_B2', 110), mk('t_B1', 110), mk('t_C', 111)] : [dp] })
        : fail(404, 'not-found', ''),
    );
    const first = task({ name: 't_dl', type: 'dltar', status: 'succeeded', appName: 'demo', buildId: null, created: 100, started: 105, ended: 110 });
    const tasks = await followPipeline({ client: c, appName: 'demo', first, pollIntervalMs: 0, sleep: async () => {} });
    expect(tasks.map((t) => t.name)).toEqual(['t_dl', 't_B2', 't_dp']);
    const q = standIn!.requests.find((r) => r.query.get('type') === 'mkraw')!.query;
    expect([q.get('since'), q.get('until')]).toEqual(['100', '111']);
  });

  it('treats expired and canceled as failures, reporting every state seen', async () => {
    const c = await client(() => ok({ task: dltar('expired') }));
    const seen: string[] = [];
    const err = await followPipeline({ client: c, appName: 'demo', first: dltar('submitted'), pollIntervalMs: 0, sleep: async () => {}, onUpdate: (t) => seen.push(t.status) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).task.status).toBe('expired');
    expect(seen).toEqual(['submitted', 'expired']);
  });

  it('ignores tasks of another app matched by the partial appName filter', async () => {
    const mk = (name: string, appName: string): TaskDto => task({ name, type: 'mkraw', status: 'succeeded', appName, buildId: 4, created: 101 });
    const c = await client((req) =>
      req.path === '/be/v1/tasks'
        ? ok({ total: 2, offset: 0, limit: 100, tasks: req.query.get('type') === 'mkraw' ? [mk('t_x', 'demo2'), mk('t_mk', 'demo')] : [{ ...mk('t_dp', 'demo'), type: 'deploy' }] })
        : fail(404, 'not-found', ''),
    );
    const tasks = await followPipeline({ client: c, appName: 'demo', first: dltar('succeeded'), pollIntervalMs: 0, sleep: async () => {} });
    expect(tasks.map((t) => t.name)).toEqual(['t_dl', 't_mk', 't_dp']);
  });
});
