import { useState } from 'react';
import { useApi } from '../App';
import type { Role, User } from '../api/types';
import { usePoll, useSubmit } from '../hooks';
import { Badge, ConfirmButton, ErrorNote, Field, FormError, Link, OneTimeSecret, Page } from '../components/ui';
import { date } from '../format';
import { navigate } from '../router';

function useRoles(): Role[] {
  const api = useApi();
  const { data } = usePoll(() => (api.can('roles', 2) ? api.get('/be/v1/roles?limit=1000&order[]=name') : Promise.resolve({ roles: [] })), 10000, []);
  return data?.roles ?? [];
}

function RolePicker({ roles, value, onChange, error }: { roles: Role[]; value: string[]; onChange: (v: string[]) => void; error: ReturnType<typeof useSubmit>['error'] }) {
  const bad = error?.param?.startsWith('roles') || error?.body.permission === 'roles.update';
  return (
    <fieldset className={bad ? 'invalid' : ''}>
      <legend>Roles</legend>
      {roles.map((r) => (
        <label key={r.name} className="check">
          <input type="checkbox" checked={value.includes(r.name)} onChange={(e) => onChange(e.target.checked ? [...value, r.name] : value.filter((x) => x !== r.name))} />
          {r.name}
        </label>
      ))}
      {bad && <small className="field-error" role="alert">{error!.message}</small>}
    </fieldset>
  );
}

export function UsersPage() {
  const api = useApi();
  const { data, error, reload } = usePoll(() => api.get('/be/v1/users?limit=1000&order[]=username'), 4000, []);
  const users: User[] = data?.users ?? [];
  return (
    <Page title="Users">
      <ErrorNote error={error} />
      <table className="list" aria-label="Users">
        <thead><tr><th scope="col">User</th><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Roles</th><th scope="col">State</th><th scope="col">Last sign-in</th></tr></thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.username}>
              <td><Link to={`users/${encodeURIComponent(u.username)}`}>{u.username}</Link></td>
              <td>{u.type === 'machine' ? 'machine user' : 'user'}</td>
              <td>{u.type === 'machine' ? u.label : [u.firstname, u.surname].filter(Boolean).join(' ')}</td>
              <td>{u.roles.join(', ')}</td>
              <td>{u.disabled ? <Badge kind="muted">disabled</Badge> : <Badge kind="ok">active</Badge>}</td>
              <td>{date(u.lastLogin)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {api.can('beUsers', 1) && <CreateUser onCreated={reload} />}
    </Page>
  );
}

function CreateUser({ onCreated }: { onCreated: () => void }) {
  const api = useApi();
  const roles = useRoles();
  const [kind, setKind] = useState<'user' | 'machine'>('user');
  const [f, setF] = useState({ username: '', email: '', firstname: '', surname: '', label: '' });
  const [chosen, setChosen] = useState<string[]>([]);
  const [secret, setSecret] = useState<{ label: string; value: string } | null>(null);
  const { busy, error, run } = useSubmit();
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });
  return (
    <form
      className="card"
      aria-labelledby="create-user"
      onSubmit={(e) => {
        e.preventDefault();
        const body = kind === 'user'
          ? { type: 'user', username: f.username, email: f.email, firstname: f.firstname, surname: f.surname, roles: chosen }
          : { type: 'machine', username: f.username, label: f.label, roles: chosen };
        void run(async () => {
          const res = await api.post('/be/v1/users', body);
          setSecret(res.password ? { label: `Initial password of ${f.username}`, value: res.password } : { label: `API key of ${f.username}`, value: res.apiKey.key });
          onCreated();
        });
      }}
    >
      <h2 id="create-user">Create a user or machine user</h2>
      {secret && <OneTimeSecret label={secret.label} value={secret.value} onDone={() => setSecret(null)} />}
      <div className="row">
        <Field label="Kind" name="type" error={error}>
          {(p) => (
            <select {...p} value={kind} onChange={(e) => setKind(e.target.value as 'user' | 'machine')}>
              <option value="user">user (signs in with a password)</option>
              <option value="machine">machine user (API key)</option>
            </select>
          )}
        </Field>
        <Field label="User name" name="username" error={error}>{(p) => <input {...p} value={f.username} onChange={set('username')} required />}</Field>
        {kind === 'user' ? (
          <>
            <Field label="Email" name="email" error={error}>{(p) => <input {...p} type="email" value={f.email} onChange={set('email')} required />}</Field>
            <Field label="First name" name="firstname" error={error}>{(p) => <input {...p} value={f.firstname} onChange={set('firstname')} required />}</Field>
            <Field label="Surname" name="surname" error={error}>{(p) => <input {...p} value={f.surname} onChange={set('surname')} required />}</Field>
          </>
        ) : (
          <Field label="Label" name="label" error={error}>{(p) => <input {...p} value={f.label} onChange={set('label')} required />}</Field>
        )}
      </div>
      <RolePicker roles={roles} value={chosen} onChange={setChosen} error={error} />
      <FormError error={error} fields={['type', 'username', 'email', 'firstname', 'surname', 'label', 'roles']} />
      <button type="submit" className="primary" disabled={busy}>Create</button>
    </form>
  );
}

export function UserPage({ username }: { username: string }) {
  const api = useApi();
  const path = `/be/v1/users/${encodeURIComponent(username)}`;
  const { data, error, reload } = usePoll(() => api.get(path), 5000, [path]);
  const u: User | undefined = data?.user;
  const act = useSubmit();
  const [secret, setSecret] = useState<{ label: string; value: string } | null>(null);
  const [keyId, setKeyId] = useState<string | null>(null);
  if (!u) return <Page title={`User ${username}`}><ErrorNote error={error} /></Page>;
  return (
    <Page
      title={`${u.type === 'machine' ? 'Machine user' : 'User'} ${u.username}`}
      actions={api.can('beUsers', 8) && (
        <ConfirmButton label="Delete user" danger question={`Delete ${u.username}? Its sessions and API keys stop working at once.`} confirm="Delete"
          onConfirm={() => void act.run(() => api.del(path)).then((ok) => ok && navigate('users'))} />
      )}
    >
      {secret && <OneTimeSecret label={secret.label} value={secret.value} onDone={() => setSecret(null)} />}
      <ErrorNote error={act.error} />
      <p>Created {date(u.created)} · last sign-in {date(u.lastLogin)}</p>
      {api.can('beUsers', 4) && <EditUser key={u.username} user={u} onSaved={reload} />}
      {u.type === 'machine' && api.can('beUsers', 4) && (
        <div className="card">
          <h2>API keys</h2>
          <p className="hint">A machine user may hold several keys (rotate without downtime). A key is shown once.</p>
          <button type="button" disabled={act.busy} onClick={() => void act.run(async () => {
            const res = await api.post('/be/v1/apikeys', { username: u.username });
            setKeyId(res.apiKey.id);
            setSecret({ label: `New API key of ${u.username} (id ${res.apiKey.id})`, value: res.apiKey.key });
          })}>New API key</button>
          {keyId && (
            <ConfirmButton label={`Revoke key ${keyId}`} question={`Revoke the API key ${keyId}?`} confirm="Revoke" danger
              onConfirm={() => void act.run(() => api.del(`/be/v1/apikeys/${encodeURIComponent(keyId)}`)).then((ok) => ok && setKeyId(null))} />
          )}
        </div>
      )}
      {u.type === 'user' && api.can('beUsers', 15) && (
        <div className="card">
          <h2>Password</h2>
          <button type="button" disabled={act.busy} onClick={() => void act.run(async () => {
            const pw = Array.from(crypto.getRandomValues(new Uint8Array(18)), (b) => b.toString(16).padStart(2, '0')).join('');
            await api.patch('/be/v1/users', { username: u.username, resetCreds: pw });
            setSecret({ label: `New password of ${u.username}`, value: pw });
          })}>Reset password</button>
        </div>
      )}
    </Page>
  );
}

function EditUser({ user, onSaved }: { user: User; onSaved: () => void }) {
  const api = useApi();
  const roles = useRoles();
  const [f, setF] = useState({ email: user.email ?? '', firstname: user.firstname ?? '', surname: user.surname ?? '', label: user.label ?? '' });
  const [chosen, setChosen] = useState<string[]>(user.roles);
  const [disabled, setDisabled] = useState(user.disabled);
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useSubmit();
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });
  return (
    <form
      className="card"
      aria-labelledby="edit-user"
      onSubmit={(e) => {
        e.preventDefault();
        const body: Record<string, unknown> = { username: user.username, disabled };
        if (user.type === 'machine') body.label = f.label;
        else Object.assign(body, { email: f.email, firstname: f.firstname, surname: f.surname });
        if (chosen.join() !== user.roles.join()) body.roles = chosen;
        void run(() => api.patch('/be/v1/users', body)).then((ok) => { if (ok) { setSaved(true); onSaved(); } });
      }}
    >
      <h2 id="edit-user">Settings</h2>
      <div className="row">
        {user.type === 'machine' ? (
          <Field label="Label" name="label" error={error}>{(p) => <input {...p} value={f.label} onChange={set('label')} />}</Field>
        ) : (
          <>
            <Field label="Email" name="email" error={error}>{(p) => <input {...p} type="email" value={f.email} onChange={set('email')} />}</Field>
            <Field label="First name" name="firstname" error={error}>{(p) => <input {...p} value={f.firstname} onChange={set('firstname')} />}</Field>
            <Field label="Surname" name="surname" error={error}>{(p) => <input {...p} value={f.surname} onChange={set('surname')} />}</Field>
          </>
        )}
      </div>
      <RolePicker roles={roles} value={chosen} onChange={setChosen} error={error} />
      <label className="check"><input type="checkbox" checked={disabled} onChange={(e) => setDisabled(e.target.checked)} /> disabled (cannot sign in or use keys)</label>
      <FormError error={error} fields={['email', 'firstname', 'surname', 'label', 'roles']} />
      <button type="submit" className="primary" disabled={busy}>Save</button>
      {saved && <span role="status" className="ok-text"> Saved.</span>}
    </form>
  );
}
