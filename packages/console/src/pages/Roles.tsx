import { useState } from 'react';
import { useApi } from '../App';
import type { Role } from '../api/types';
import { RESOURCE_MAXIMA } from '../api/resources.gen';
import { usePoll, useSubmit } from '../hooks';
import { ConfirmButton, ErrorNote, Field, FormError, Link, Page } from '../components/ui';
import { MatrixEditor } from '../components/MatrixEditor';
import { navigate } from '../router';

const ADMINS = 'Administrators';
const zero = () => Object.fromEntries(Object.keys(RESOURCE_MAXIMA).map((r) => [r, 0]));

export function RolesPage() {
  const api = useApi();
  const { data, error, reload } = usePoll(() => api.get('/be/v1/roles?limit=1000&order[]=name'), 4000, []);
  const roles: Role[] = data?.roles ?? [];
  return (
    <Page title="Roles">
      <ErrorNote error={error} />
      <table className="list" aria-label="Roles">
        <thead><tr><th scope="col">Name</th><th scope="col">Label</th><th scope="col">Users</th><th scope="col">Grants</th></tr></thead>
        <tbody>
          {roles.map((r) => (
            <tr key={r.name}>
              <td><Link to={`roles/${encodeURIComponent(r.name)}`}>{r.name}</Link></td>
              <td>{r.label}</td>
              <td>{r.users}</td>
              <td><small>{Object.entries(r.permissions).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing'}</small></td>
            </tr>
          ))}
        </tbody>
      </table>
      {api.can('roles', 1) && <RoleForm onSaved={(name) => { reload(); navigate(`roles/${encodeURIComponent(name)}`); }} />}
    </Page>
  );
}

function RoleForm({ existing, onSaved }: { existing?: Role; onSaved: (name: string) => void }) {
  const api = useApi();
  const [name, setName] = useState(existing?.name ?? '');
  const [label, setLabel] = useState(existing?.label ?? '');
  const [perms, setPerms] = useState<Record<string, number>>({ ...zero(), ...(existing?.permissions ?? {}) });
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useSubmit();
  const readOnly = existing?.name === ADMINS;
  return (
    <form
      className="card"
      aria-labelledby="role-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (readOnly) return;
        const body = { name, permissions: perms, ...(label ? { label } : {}) };
        void run(() => (existing ? api.patch('/be/v1/roles', body) : api.post('/be/v1/roles', body))).then((ok) => {
          if (ok) {
            setSaved(true);
            onSaved(name);
          }
        });
      }}
    >
      <h2 id="role-form">{existing ? (readOnly ? 'Administrators hold every permission (read-only)' : 'Edit the role') : 'Create a role'}</h2>
      <div className="row">
        {!existing && <Field label="Name" name="name" error={error}>{(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} required />}</Field>}
        <Field label="Label" name="label" error={error}>{(p) => <input {...p} value={label} readOnly={readOnly} onChange={(e) => setLabel(e.target.value)} />}</Field>
      </div>
      <MatrixEditor value={perms} maxima={RESOURCE_MAXIMA} held={api.session?.permissions} readOnly={readOnly} onChange={(v) => { setPerms(v); setSaved(false); }} />
      {error?.param?.startsWith('permissions') && <small className="field-error" role="alert">{error.message}</small>}
      <FormError error={error} fields={['name', 'label', 'permissions']} />
      {!readOnly && <button type="submit" className="primary" disabled={busy}>{existing ? 'Save' : 'Create role'}</button>}
      {saved && existing && <span role="status" className="ok-text"> Saved.</span>}
    </form>
  );
}

export function RolePage({ name }: { name: string }) {
  const api = useApi();
  const path = `/be/v1/roles/${encodeURIComponent(name)}`;
  const { data, error, reload } = usePoll(() => api.get(path), 5000, [path]);
  const del = useSubmit();
  const role: Role | undefined = data?.role;
  if (!role) return <Page title={`Role ${name}`}><ErrorNote error={error} /></Page>;
  return (
    <Page
      title={`Role ${role.name}`}
      actions={role.name !== ADMINS && api.can('roles', 8) && (
        <ConfirmButton label="Delete role" danger question={`Delete the role ${role.name}?`} confirm="Delete"
          onConfirm={() => void del.run(() => api.del(path)).then((ok) => ok && navigate('roles'))} />
      )}
    >
      <p>{role.users} users hold it.</p>
      <ErrorNote error={del.error} />
      <RoleForm key={role.name} existing={role} onSaved={reload} />
    </Page>
  );
}
