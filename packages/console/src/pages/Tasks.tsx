import { useState } from 'react';
import { useApi } from '../App';
import type { Task } from '../api/types';
import { qs } from '../api/client';
import { usePoll, useSubmit } from '../hooks';
import { Badge, ErrorNote, Field, Link, Page, Progress } from '../components/ui';
import { date } from '../format';

export function TaskStatus({ status }: { status: string }) {
  const kind = status === 'succeeded' ? 'ok' : status === 'failed' ? 'error' : status === 'running' || status === 'submitted' ? 'busy' : 'muted';
  return <Badge kind={kind}>{status}</Badge>;
}

export function TasksPage() {
  const api = useApi();
  const [appName, setApp] = useState('');
  const [status, setStatus] = useState('');
  const [type, setType] = useState('');
  const q = qs({ appName, status, type, limit: 100 });
  const { data, error } = usePoll(() => api.get(`/be/v1/tasks${q}&order[]=-created`), 1500, [q]);
  const tasks: Task[] = data?.tasks ?? [];
  return (
    <Page title="Tasks">
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label="App" name="appName">{(p) => <input {...p} value={appName} onChange={(e) => setApp(e.target.value)} />}</Field>
        <Field label="Status" name="status">
          {(p) => (
            <select {...p} value={status} onChange={(e) => setStatus(e.target.value)}>
              <option value="">any</option>
              {['submitted', 'running', 'succeeded', 'failed', 'expired', 'canceled'].map((s) => <option key={s}>{s}</option>)}
            </select>
          )}
        </Field>
        <Field label="Type" name="type">
          {(p) => (
            <select {...p} value={type} onChange={(e) => setType(e.target.value)}>
              <option value="">any</option>
              {['dltar', 'mkraw', 'deploy', 'trace', 'hello', 'cleanup'].map((s) => <option key={s}>{s}</option>)}
            </select>
          )}
        </Field>
      </form>
      <ErrorNote error={error} />
      <p className="hint">{data ? `${data.total} tasks, newest first; updated live.` : 'Loading…'}</p>
      <table className="list" aria-label="Tasks">
        <thead><tr><th scope="col">Task</th><th scope="col">Type</th><th scope="col">App</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col">Created</th><th scope="col">Notes</th></tr></thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.name}>
              <td><Link to={`tasks/${t.name}`}>{t.name}</Link></td>
              <td>{t.type}</td>
              <td>{t.appName ?? '—'}</td>
              <td><TaskStatus status={t.status} /></td>
              <td>{Math.round(t.progress * 100)} %</td>
              <td>{date(t.created)}</td>
              <td>
                {t.warnings.some((w) => !w.acknowledged) && <Badge kind="warn">warning</Badge>}
                {t.error ? <span className="error-text">{String((t.error as { message?: string }).message ?? '')}</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

export function TaskPage({ name }: { name: string }) {
  const api = useApi();
  const path = `/be/v1/tasks/${encodeURIComponent(name)}`;
  const { data, error, reload } = usePoll(() => api.get(path), 1500, [path]);
  const act = useSubmit();
  const t: Task | undefined = data?.task;
  if (!t) return <Page title={`Task ${name}`}><ErrorNote error={error} /></Page>;
  const doit = (fn: () => Promise<unknown>) => void act.run(fn).then(reload);
  const canExec = api.can('tasks', 16);
  const canUpdate = api.can('tasks', 4);
  return (
    <Page title={`Task ${t.name}`}>
      <ErrorNote error={error} />
      <dl className="facts">
        <dt>Type</dt><dd>{t.type}</dd>
        <dt>Status</dt><dd><TaskStatus status={t.status} /></dd>
        <dt>App</dt><dd>{t.appName ? <Link to={`apps/${t.appName}`}>{t.appName}</Link> : '—'}{t.buildId ? `, build ${t.buildId}` : ''}</dd>
        <dt>Progress</dt><dd><Progress value={t.progress} label="Task progress" /></dd>
        <dt>Attempts</dt><dd>{t.attempts}</dd>
        <dt>Created</dt><dd>{date(t.created)}</dd>
        <dt>Started</dt><dd>{date(t.started)}</dd>
        <dt>Ended</dt><dd>{date(t.ended)}</dd>
      </dl>
      {t.error ? (
        <div className="error-note" role="alert">
          <h2>Error</h2>
          <p>{String((t.error as { message?: string }).message ?? '')}</p>
          <pre>{JSON.stringify(t.error, null, 2)}</pre>
        </div>
      ) : null}
      {t.warnings.length > 0 && (
        <div className="card">
          <h2>Warnings</h2>
          <ul>
            {t.warnings.map((w, i) => <li key={i}><code>{w.code}</code> {w.message} {w.acknowledged ? <Badge kind="muted">acknowledged</Badge> : <Badge kind="warn">new</Badge>}</li>)}
          </ul>
          {canUpdate && t.warnings.some((w) => !w.acknowledged) && (
            <button type="button" disabled={act.busy} onClick={() => doit(() => api.patch('/be/v1/tasks', { name: t.name, acknowledge: true }))}>Acknowledge warnings</button>
          )}
        </div>
      )}
      <div className="actions">
        {canExec && t.status === 'failed' && (
          <button type="button" className="primary" disabled={act.busy} onClick={() => doit(() => api.post('/be/v1/trigger', { type: 'retry', taskName: t.name }))}>Retry</button>
        )}
        {canUpdate && t.type === 'dltar' && (t.status === 'submitted' || t.status === 'running') && (
          <button type="button" disabled={act.busy} onClick={() => doit(() => api.patch('/be/v1/tasks', { name: t.name, expire: true }))}>Expire upload</button>
        )}
      </div>
      <ErrorNote error={act.error} />
      {t.result ? <details><summary>Result</summary><pre>{JSON.stringify(t.result, null, 2)}</pre></details> : null}
    </Page>
  );
}
