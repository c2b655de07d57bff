import { useState } from 'react';
import { useApi } from '../App';
import { useSubmit } from '../hooks';
import { Field, FormError } from '../components/ui';

/** Sign-in (org, user, password). Machine users have API keys and no password: they cannot sign in here. */
export function LoginPage({ expired, onSignedIn }: { expired: boolean; onSignedIn: () => void }) {
  const api = useApi();
  const [orgName, setOrg] = useState('');
  const [username, setUser] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useSubmit();
  return (
    <section className="login" aria-labelledby="login-title">
      <h1 id="login-title">{expired ? 'Your session has expired' : 'Sign in to ROCKIT Edge'}</h1>
      {expired && (
        <p className="notice" role="status" data-testid="expired">
          You were signed out because your session ended (sessions last 24 hours, or it was revoked). Sign in again to continue.
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => api.login(orgName, username, password)).then((ok) => ok && onSignedIn());
        }}
      >
        <Field label="Organization" name="orgName" error={error}>
          {(p) => <input {...p} value={orgName} onChange={(e) => setOrg(e.target.value)} autoComplete="organization" required autoFocus />}
        </Field>
        <Field label="User name" name="username" error={error}>
          {(p) => <input {...p} value={username} onChange={(e) => setUser(e.target.value)} autoComplete="username" required />}
        </Field>
        <Field label="Password" name="password" error={error}>
          {(p) => <input {...p} type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" required />}
        </Field>
        <FormError error={error} fields={['orgName', 'username', 'password']} />
        <button type="submit" className="primary" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <p className="hint">Machine users sign in with API keys through the API or the <code>rockit</code> command, not here.</p>
      </form>
    </section>
  );
}
