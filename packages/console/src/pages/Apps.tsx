import { useState } from 'react';
import { useApi } from '../App';
import type { App } from '../api/types';
import { usePoll, useSubmit } from '../hooks';
import { Badge, ErrorNote, Field, FormError, Link, Page } from '../components/ui';
import { bytes, date } from '../format';
import { navigate } from '../router';

export function AppState({ app }: { app: App }) {
  if (app.error) return <Badge kind="error">error</Badge>;
  if (app.processing) return <Badge kind="busy">processing</Badge>;
  if (app.iCurBuild === null || app.iCurBuild === undefined) return <Badge kind="muted">no build yet</Badge>;
  return <Badge kind="ok">ready</Badge>;
}

/** Retries the failed task that holds the app in error state (a deploy, after its deployment was fixed). */
export function RetryButton({ app, onDone }: { app: App; onDone: () => void }) {
  const api = useApi();
  const { busy, error, run } = useSubmit();
  if (!app.error) return null;
  return (
    <span className="retry">
      <button type="button" disabled={busy} onClick={() => void run(() => api.post('/be/v1/trigger', { type: 'retry', taskName: app.error!.task })).then(onDone)}>
        Retry
      </button>
      <ErrorNote error={error} />
    </span>
  );
}

export function AppsPage() {
  const api = useApi();
  const { data, error, reload } = usePoll(() => api.get('/be/v1/apps?limit=1000&order[]=name'), 3000, []);
  const apps: App[] = data?.apps ?? [];
  return (
    <Page title="Apps">
      <ErrorNote error={error} />
      <table className="list" aria-label="Apps">
        <thead>
          <tr><th scope="col">Name</th><th scope="col">Label</th><th scope="col">State</th><th scope="col">Live build</th><th scope="col">Size</th><th scope="col">Updated</th></tr>
        </thead>
        <tbody>
          {apps.map((a) => (
            <tr key={a.name} data-testid={`app-${a.name}`}>
              <td><Link to={`apps/${encodeURIComponent(a.name)}`}>{a.name}</Link></td>
              <td>{a.label}</td>
              <td>
                <AppState app={a} />
                {a.error && <span className="error-text"> {a.error.message} </span>}
                <RetryButton app={a} onDone={reload} />
              </td>
              <td>{a.iCurBuild ?? '—'}</td>
              <td>{bytes(a.sizeBytes)}</td>
              <td>{date(a.updated)}</td>
            </tr>
          ))}
          {data && apps.length === 0 && <tr><td colSpan={6}>No apps yet: create one below.</td></tr>}
        </tbody>
      </table>
      {api.can('apps', 1) && <CreateApp onCreated={(name) => navigate(`apps/${encodeURIComponent(name)}`)} />}
    </Page>
  );
}

function CreateApp({ onCreated }: { onCreated: (name: string) => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [label, setLabel] = useState('');
  const [maxBuilds, setMaxBuilds] = useState('5');
  const { busy, error, run } = useSubmit();
  return (
    <form
      className="card"
      aria-labelledby="create-app"
      onSubmit={(e) => {
        e.preventDefault();
        void run(() => api.post('/be/v1/apps', { name, label, maxBuilds: Number(maxBuilds) })).then((ok) => ok && onCreated(name));
      }}
    >
      <h2 id="create-app">Create an app</h2>
      <div className="row">
        <Field label="Name" name="name" error={error} hint="letters, digits, _ (2–50)">
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} required />}
        </Field>
        <Field label="Label" name="label" error={error}>
          {(p) => <input {...p} value={label} onChange={(e) => setLabel(e.target.value)} required />}
        </Field>
        <Field label="Builds kept" name="maxBuilds" error={error}>
          {(p) => <input {...p} type="number" min={1} max={100} value={maxBuilds} onChange={(e) => setMaxBuilds(e.target.value)} />}
        </Field>
      </div>
      <FormError error={error} fields={['name', 'label', 'maxBuilds']} />
      <button type="submit" className="primary" disabled={busy}>Create app</button>
    </form>
  );
}
