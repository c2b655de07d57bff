import { useState } from 'react';
import { useApi } from '../App';
import type { Deployment } from '../api/types';
import { usePoll, useSubmit } from '../hooks';
import { Badge, ConfirmButton, ErrorNote, Field, FormError, Link, Page } from '../components/ui';
import { bytes, date } from '../format';
import { navigate } from '../router';

export function DeploymentsPage() {
  const api = useApi();
  const { data, error, reload } = usePoll(() => api.get('/be/v1/deployments?limit=1000&order[]=name'), 3000, []);
  const list: Deployment[] = data?.deployments ?? [];
  return (
    <Page title="Deployments">
      <p className="hint">CDN origins the apps are published to: S3-compatible buckets or folders on this server.</p>
      <ErrorNote error={error} />
      <table className="list" aria-label="Deployments">
        <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Where</th><th scope="col">Status</th><th scope="col">Updated</th></tr></thead>
        <tbody>
          {list.map((d) => (
            <tr key={d.name}>
              <td><Link to={`deployments/${encodeURIComponent(d.name)}`}>{d.name}</Link></td>
              <td>{d.type}</td>
              <td>{where(d)}</td>
              <td>{d.status === 'ok' ? <Badge kind="ok">ok</Badge> : <Badge kind="error">error</Badge>} <small>{d.message}</small></td>
              <td>{date(d.updated)}</td>
            </tr>
          ))}
          {data && list.length === 0 && <tr><td colSpan={5}>No deployments: apps go to the depot only.</td></tr>}
        </tbody>
      </table>
      {api.can('deployments', 1) && <DeploymentForm onSaved={(name) => { reload(); navigate(`deployments/${encodeURIComponent(name)}`); }} />}
    </Page>
  );
}

function where(d: Deployment): string {
  const pre = d.originPrefix ? `/${d.originPrefix}` : '';
  if (d.type === 's3' && d.s3) return `s3://${d.s3.bucket}${pre} @ ${d.s3.endpoint}`;
  if (d.fs) return `${d.fs.path}${pre}`;
  return '—';
}

const S3_FIELDS = ['endpoint', 'region', 'bucket', 'accessKeyId', 'secretAccessKey'] as const;

/** Create (no `existing`) or edit a deployment. Secrets are write-only: empty means "keep the stored one". */
export function DeploymentForm({ existing, onSaved }: { existing?: Deployment; onSaved: (name: string) => void }) {
  const api = useApi();
  const [name, setName] = useState(existing?.name ?? '');
  const [label, setLabel] = useState(existing?.label ?? '');
  const [type, setType] = useState<'s3' | 'fs'>(existing?.type ?? 'fs');
  const [prefix, setPrefix] = useState(existing?.originPrefix ?? '');
  const [fsPath, setFsPath] = useState(existing?.fs?.path ?? '');
  const [s3, setS3] = useState<Record<string, string>>({
    endpoint: existing?.s3?.endpoint ?? '', region: existing?.s3?.region ?? '', bucket: existing?.s3?.bucket ?? '',
    accessKeyId: existing?.s3?.accessKeyId ?? '', secretAccessKey: '',
  });
  const [pathStyle, setPathStyle] = useState(existing?.s3?.forcePathStyle ?? true);
  const [verify, setVerify] = useState(true);
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useSubmit();
  const submit = () => {
    const body: Record<string, unknown> = { name, verify, ...(label ? { label } : {}) };
    if (!existing) body.type = type;
    if (prefix || existing?.originPrefix) body.originPrefix = prefix || null;
    if (type === 'fs') body.fs = { path: fsPath };
    else {
      const s: Record<string, unknown> = { forcePathStyle: pathStyle };
      for (const k of S3_FIELDS) if (s3[k] || (!existing && k !== 'secretAccessKey')) s[k] = s3[k];
      if (!existing) s.secretAccessKey = s3.secretAccessKey;
      body.s3 = s;
    }
    return run(() => (existing ? api.patch('/be/v1/deployments', body) : api.post('/be/v1/deployments', body))).then((ok) => {
      if (ok) {
        setSaved(true);
        setS3((v) => ({ ...v, secretAccessKey: '' }));
        onSaved(name);
      }
    });
  };
  return (
    <form className="card" aria-labelledby="dep-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
      <h2 id="dep-form">{existing ? 'Settings' : 'Create a deployment'}</h2>
      <div className="row">
        {!existing && (
          <Field label="Name" name="name" error={error}>{(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} required />}</Field>
        )}
        <Field label="Label" name="label" error={error}>{(p) => <input {...p} value={label} onChange={(e) => setLabel(e.target.value)} />}</Field>
        {!existing && (
          <Field label="Type" name="type" error={error}>
            {(p) => (
              <select {...p} value={type} onChange={(e) => setType(e.target.value as 's3' | 'fs')}>
                <option value="fs">folder on this server</option>
                <option value="s3">S3-compatible bucket</option>
              </select>
            )}
          </Field>
        )}
        <Field label="Prefix inside the origin" name="originPrefix" error={error}>{(p) => <input {...p} value={prefix} onChange={(e) => setPrefix(e.target.value)} />}</Field>
      </div>
      {type === 'fs' ? (
        <Field label="Folder (absolute path on the server)" name="fs" error={error}>
          {(p) => <input {...p} value={fsPath} onChange={(e) => setFsPath(e.target.value)} required />}
        </Field>
      ) : (
        <div className="row">
          {S3_FIELDS.map((k) => (
            <Field key={k} label={k === 'secretAccessKey' ? `Secret access key${existing ? ' (empty: keep)' : ''}` : k} name={`s3.${k}`} error={error}>
              {(p) => (
                <input {...p} type={k === 'secretAccessKey' ? 'password' : 'text'} autoComplete="off" value={s3[k]} required={!existing}
                  onChange={(e) => setS3({ ...s3, [k]: e.target.value })} />
              )}
            </Field>
          ))}
          <label className="check"><input type="checkbox" checked={pathStyle} onChange={(e) => setPathStyle(e.target.checked)} /> path-style addressing</label>
        </div>
      )}
      {type === 's3' && fieldOnlyS3(error?.param) && <small className="field-error" role="alert">{error!.message}</small>}
      <label className="check"><input type="checkbox" checked={verify} onChange={(e) => setVerify(e.target.checked)} /> verify (write, read and delete a probe first)</label>
      <FormError error={error} fields={['name', 'label', 'type', 'originPrefix', 'fs', 's3']} />
      <button type="submit" className="primary" disabled={busy}>{existing ? 'Save' : 'Create deployment'}</button>
      {saved && existing && <span role="status" className="ok-text"> Saved.</span>}
    </form>
  );
}

/** `s3` itself (a failed verify) has no single field: shown under the S3 fields. */
function fieldOnlyS3(param: string | undefined): boolean {
  return param === 's3';
}

export function DeploymentPage({ name }: { name: string }) {
  const api = useApi();
  const path = `/be/v1/deployments/${encodeURIComponent(name)}`;
  const { data, error, reload } = usePoll(() => api.get(path), 3000, [path]);
  const act = useSubmit();
  const d: Deployment | undefined = data?.deployment;
  if (!d) return <Page title={`Deployment ${name}`}><ErrorNote error={error} /></Page>;
  return (
    <Page
      title={`Deployment ${d.name}`}
      actions={api.can('deployments', 8) && (
        <ConfirmButton label="Delete deployment" danger question={`Delete ${d.name}? Its published files are removed.`} confirm="Delete"
          onConfirm={() => void act.run(() => api.del(path)).then((ok) => ok && navigate('deployments'))} />
      )}
    >
      <p className="state-line">
        {d.type} · {where(d)} · status {d.status === 'ok' ? <Badge kind="ok">ok</Badge> : <Badge kind="error">error</Badge>}{' '}
        <span data-testid="dep-message">{d.message}</span> · published {bytes((d as { publishedBytes?: number }).publishedBytes)}
      </p>
      {api.can('deployments', 4) && (
        <button type="button" disabled={act.busy} onClick={() => void act.run(() => api.patch('/be/v1/deployments', { name: d.name, verify: true })).then(reload)}>Verify now</button>
      )}
      <ErrorNote error={act.error} />
      {api.can('deployments', 4) && <DeploymentForm key={d.name} existing={d} onSaved={reload} />}
    </Page>
  );
}
