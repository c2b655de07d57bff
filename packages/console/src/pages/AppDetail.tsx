import { useEffect, useState } from 'react';
import { useApi } from '../App';
import type { App, Deployment, Training } from '../api/types';
import { usePoll, useSubmit } from '../hooks';
import { Badge, ConfirmButton, ErrorNote, Field, FormError, Link, Page } from '../components/ui';
import { BarChart } from '../components/charts';
import { PushBuild } from '../components/Push';
import { bytes, date, pct } from '../format';
import { navigate } from '../router';
import { AppState, RetryButton } from './Apps';

export function AppPage({ name }: { name: string }) {
  const api = useApi();
  const path = `/be/v1/apps/${encodeURIComponent(name)}`;
  const { data, error, reload } = usePoll(() => api.get(path), 2000, [path]);
  const deps = usePoll(() => api.get('/be/v1/deployments?limit=1000&order[]=name').catch(() => ({ deployments: [] })), 5000, []);
  const app: App | undefined = data?.app;
  const deployments: Deployment[] = deps.data?.deployments ?? [];
  const del = useSubmit();
  if (!app) return <Page title={`App ${name}`}><ErrorNote error={error} />{!error && <p>Loading…</p>}</Page>;
  return (
    <Page
      title={`App ${app.name}`}
      actions={
        api.can('apps', 8) && (
          <ConfirmButton
            label="Delete app"
            danger
            question={`Delete ${app.name} with all its builds, images and patches, in the depot and on every origin?`}
            confirm="Delete for good"
            onConfirm={() => void del.run(() => api.del(path)).then((ok) => ok && navigate('apps'))}
          />
        )
      }
    >
      <ErrorNote error={error} />
      <ErrorNote error={del.error} />
      <p className="state-line">
        <AppState app={app} /> {app.label} · live build <strong data-testid="live-build">{app.iCurBuild ?? '—'}</strong>
        {app.dxfName ? <> (<code>{app.dxfName}</code>)</> : null} · {bytes(app.sizeBytes)}
        {app.locked && <> · <Badge kind="warn">locked</Badge></>}
      </p>
      {app.error && (
        <div className="error-note" role="alert">
          <strong>{app.error.type} failed</strong> since {date(app.error.since)}: {app.error.message}{' '}
          (task <Link to={`tasks/${app.error.task}`}>{app.error.task}</Link>) <RetryButton app={app} onDone={reload} />
        </div>
      )}
      <div className="grid2">
        {api.can('apps', 4) && <EditApp app={app} deployments={deployments} onSaved={reload} />}
        <Releases app={app} deployments={deployments} />
      </div>
      {api.can('apps', 4) && <PushBuild appName={app.name} onPublished={reload} />}
      <Builds app={app} onChanged={reload} />
      <TrainingView appName={app.name} />
    </Page>
  );
}

function EditApp({ app, deployments, onSaved }: { app: App; deployments: Deployment[]; onSaved: () => void }) {
  const api = useApi();
  const [label, setLabel] = useState(app.label);
  const [maxBuilds, setMaxBuilds] = useState(String(app.maxBuilds));
  const [chosen, setChosen] = useState<string[]>(app.deployments ?? []);
  // The lock follows the app (a failed deploy locks it) until the user changes it here.
  const [lockEdit, setLockEdit] = useState<boolean | null>(null);
  const locked = lockEdit ?? app.locked;
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useSubmit();
  useEffect(() => setSaved(false), [label, maxBuilds, chosen, lockEdit]);
  return (
    <form
      className="card"
      aria-labelledby="edit-app"
      onSubmit={(e) => {
        e.preventDefault();
        void run(() => api.patch('/be/v1/apps', {
          name: app.name, label, maxBuilds: Number(maxBuilds), deployments: chosen, ...(lockEdit !== null ? { locked: lockEdit } : {}),
        })).then((ok) => {
          if (ok) {
            setSaved(true);
            onSaved();
          }
        });
      }}
    >
      <h2 id="edit-app">Settings</h2>
      <Field label="Label" name="label" error={error}>
        {(p) => <input {...p} value={label} onChange={(e) => setLabel(e.target.value)} required />}
      </Field>
      <Field label="Builds kept" name="maxBuilds" error={error}>
        {(p) => <input {...p} type="number" min={1} max={100} value={maxBuilds} onChange={(e) => setMaxBuilds(e.target.value)} />}
      </Field>
      <fieldset className={error?.param?.startsWith('deployments') ? 'invalid' : ''}>
        <legend>Deployments (none ticked: every deployment of the organization)</legend>
        {deployments.map((d) => (
          <label key={d.name} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(d.name)}
              onChange={(e) => setChosen(e.target.checked ? [...chosen, d.name] : chosen.filter((x) => x !== d.name))}
            />
            {d.name}
          </label>
        ))}
        {deployments.length === 0 && <p className="hint">No deployments: the app is published to the depot only.</p>}
        {error?.param?.startsWith('deployments') && <small className="field-error" role="alert">{error.message}</small>}
      </fieldset>
      <label className="check">
        <input type="checkbox" checked={locked} onChange={(e) => setLockEdit(e.target.checked)} /> locked (refuse new builds and set-live)
      </label>
      {error?.param === 'locked' || (error?.code === 'app-locked' && lockEdit !== null) ? <small className="field-error" role="alert">{error!.message}</small> : null}
      <FormError error={error && !(error.code === 'app-locked' && lockEdit !== null) ? error : null} fields={['label', 'maxBuilds', 'deployments', 'locked']} />
      <button type="submit" className="primary" disabled={busy}>Save</button>
      {saved && <span role="status" className="ok-text"> Saved.</span>}
    </form>
  );
}

/** Where the app is published: the depot and each deployment it targets (all of the org's when it names none). */
function Releases({ app, deployments }: { app: App; deployments: Deployment[] }) {
  const targets = app.deployments && app.deployments.length > 0 ? deployments.filter((d) => app.deployments.includes(d.name)) : deployments;
  const failed = (app.error as { deployment?: string } | null)?.deployment;
  const live = app.iCurBuild ? `build ${app.iCurBuild} (${app.dxfName})` : 'nothing published yet';
  return (
    <div className="card">
      <h2>Release on each origin</h2>
      <table className="list" aria-label="Releases">
        <thead><tr><th scope="col">Origin</th><th scope="col">Status</th><th scope="col">Release</th></tr></thead>
        <tbody>
          <tr><td>depot</td><td><Badge kind="ok">ok</Badge></td><td>{live}</td></tr>
          {targets.map((d) => {
            const bad = d.status === 'error' || failed === d.name || (app.error && !failed);
            return (
              <tr key={d.name}>
                <td><Link to={`deployments/${encodeURIComponent(d.name)}`}>{d.name}</Link> <small>({d.type})</small></td>
                <td>{bad ? <Badge kind="error">error</Badge> : <Badge kind="ok">ok</Badge>} {d.message ? <small>{d.message}</small> : null}</td>
                <td>{bad ? 'not updated: retry after fixing the deployment' : live}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Builds({ app, onChanged }: { app: App; onChanged: () => void }) {
  const api = useApi();
  const live = useSubmit();
  return (
    <div className="card">
      <h2>Builds and patches</h2>
      <ErrorNote error={live.error} />
      <table className="list" aria-label="Builds">
        <thead><tr><th scope="col">Build</th><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Files</th><th scope="col">Created</th><th scope="col">Current</th></tr></thead>
        <tbody>
          {[...(app.builds ?? [])].reverse().map((b) => (
            <tr key={b.buildId}>
              <td>{b.buildId}</td>
              <td>{b.buildName ?? '—'}</td>
              <td>{bytes(b.sizeBytes)}</td>
              <td>{b.files}</td>
              <td>{date(b.created)}</td>
              <td>
                {b.buildId === app.iCurBuild ? (
                  <Badge kind="ok">current</Badge>
                ) : api.can('apps', 4) ? (
                  <button type="button" disabled={live.busy || app.processing} onClick={() => void live.run(() => api.patch('/be/v1/apps', { name: app.name, iCurBuild: b.buildId })).then(onChanged)}>
                    Make live
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
          {(app.builds ?? []).length === 0 && <tr><td colSpan={6}>No builds yet.</td></tr>}
        </tbody>
      </table>
      <table className="list" aria-label="Patches">
        <thead><tr><th scope="col">Patch</th><th scope="col">Size</th></tr></thead>
        <tbody>
          {(app.patches ?? []).map((p) => (
            <tr key={`${p.fromBuildId}-${p.toBuildId}`}><td>{p.fromBuildId} → {p.toBuildId}</td><td>{bytes(p.sizeBytes)}</td></tr>
          ))}
          {(app.patches ?? []).length === 0 && <tr><td colSpan={2}>No patches yet (they come with the second build).</td></tr>}
        </tbody>
      </table>
    </div>
  );
}

function TrainingView({ appName }: { appName: string }) {
  const api = useApi();
  const path = `/be/v1/trainings/${encodeURIComponent(appName)}`;
  const { data } = usePoll(() => (api.can('trainings', 2) ? api.get(path) : Promise.resolve(null)), 10000, [path]);
  const t: Training | undefined = data?.training;
  if (!t) return null;
  const pre = t.quality?.preloadBytes as Record<string, number> | undefined;
  return (
    <div className="card">
      <h2>FastStart training</h2>
      <p>
        {t.traces} traces ({t.tracesSinceLastImage} since the last image) · automatic: {t.auto ? `yes, after ${t.nTracesReliable} new traces` : 'no'} ·
        last processed {date(t.lastProcessed)} · coverage {pct(t.quality?.coverage)}
      </p>
      {pre ? (
        <BarChart title="Predicted preload before the game starts, by bandwidth" bars={Object.entries(pre).map(([label, value]) => ({ label, value }))} format={bytes} />
      ) : (
        <p className="hint">No prediction yet: it appears once traces were processed.</p>
      )}
    </div>
  );
}
