import { useState } from 'react';
import { useApi } from '../App';
import type { Subscription } from '../api/types';
import { EVENT_NAMES } from '../api/resources.gen';
import { usePoll, useSubmit } from '../hooks';
import { Badge, ConfirmButton, ErrorNote, Field, FormError, Link, OneTimeSecret, Page } from '../components/ui';
import { date } from '../format';
import { navigate } from '../router';

export function SubscriptionsPage() {
  const api = useApi();
  const { data, error, reload } = usePoll(() => api.get('/be/v1/subscriptions?limit=1000&order[]=name'), 5000, []);
  const subs: Subscription[] = data?.subscriptions ?? [];
  return (
    <Page title="Subscriptions">
      <p className="hint">Webhook and Slack targets for pipeline events (import submitted, deploy failed, …).</p>
      <ErrorNote error={error} />
      <table className="list" aria-label="Subscriptions">
        <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Target</th><th scope="col">Events</th><th scope="col">Created</th></tr></thead>
        <tbody>
          {subs.map((s) => (
            <tr key={s.name}>
              <td><Link to={`subscriptions/${encodeURIComponent(s.name)}`}>{s.name}</Link></td>
              <td>{s.type}</td>
              <td>{s.url}</td>
              <td><small>{s.events.length === EVENT_NAMES.length ? 'all' : s.events.join(', ')}</small></td>
              <td>{date(s.created)}</td>
            </tr>
          ))}
          {data && subs.length === 0 && <tr><td colSpan={5}>No subscriptions.</td></tr>}
        </tbody>
      </table>
      {api.can('subscriptions', 1) && <CreateSubscription onCreated={reload} />}
    </Page>
  );
}

function CreateSubscription({ onCreated }: { onCreated: () => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [type, setType] = useState<'webhook' | 'slack'>('webhook');
  const [url, setUrl] = useState('');
  const [all, setAll] = useState(true);
  const [events, setEvents] = useState<string[]>([]);
  const [secret, setSecret] = useState<string | null>(null);
  const { busy, error, run } = useSubmit();
  return (
    <form
      className="card"
      aria-labelledby="create-sub"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          const res = await api.post('/be/v1/subscriptions', { name, type, url, ...(all ? {} : { events }) });
          setSecret(res.secret);
          onCreated();
        });
      }}
    >
      <h2 id="create-sub">Create a subscription</h2>
      {secret && <OneTimeSecret label={`Signing secret of ${name}`} value={secret} onDone={() => setSecret(null)} />}
      <div className="row">
        <Field label="Name" name="name" error={error}>{(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} required />}</Field>
        <Field label="Type" name="type" error={error}>
          {(p) => (
            <select {...p} value={type} onChange={(e) => setType(e.target.value as 'webhook' | 'slack')}>
              <option value="webhook">webhook</option>
              <option value="slack">Slack</option>
            </select>
          )}
        </Field>
        <Field label="URL" name="url" error={error}>{(p) => <input {...p} type="url" value={url} onChange={(e) => setUrl(e.target.value)} required />}</Field>
      </div>
      <fieldset className={error?.param?.startsWith('events') ? 'invalid' : ''}>
        <legend>Events</legend>
        <label className="check"><input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> every event</label>
        {!all && EVENT_NAMES.map((ev) => (
          <label key={ev} className="check">
            <input type="checkbox" checked={events.includes(ev)} onChange={(e) => setEvents(e.target.checked ? [...events, ev] : events.filter((x) => x !== ev))} />
            {ev}
          </label>
        ))}
        {error?.param?.startsWith('events') && <small className="field-error" role="alert">{error.message}</small>}
      </fieldset>
      <FormError error={error} fields={['name', 'type', 'url', 'events']} />
      <button type="submit" className="primary" disabled={busy}>Create subscription</button>
    </form>
  );
}

export function SubscriptionPage({ name }: { name: string }) {
  const api = useApi();
  const path = `/be/v1/subscriptions/${encodeURIComponent(name)}`;
  const { data, error } = usePoll(() => api.get(path), 3000, [path]);
  const del = useSubmit();
  const s: Subscription | undefined = data?.subscription;
  if (!s) return <Page title={`Subscription ${name}`}><ErrorNote error={error} /></Page>;
  return (
    <Page
      title={`Subscription ${s.name}`}
      actions={api.can('subscriptions', 8) && (
        <ConfirmButton label="Delete subscription" danger question={`Delete ${s.name}? Deliveries still queued are dropped.`} confirm="Delete"
          onConfirm={() => void del.run(() => api.del(path)).then((ok) => ok && navigate('subscriptions'))} />
      )}
    >
      <ErrorNote error={del.error} />
      <p>{s.type} to {s.url} · events: {s.events.join(', ')}</p>
      <h2>Delivery log</h2>
      <p className="hint">Failed deliveries are retried with growing pauses (at least 8 attempts over an hour); retries share the delivery id.</p>
      <table className="list" aria-label="Deliveries">
        <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">App</th><th scope="col">Delivery</th><th scope="col">Attempt</th><th scope="col">Result</th><th scope="col">Time</th></tr></thead>
        <tbody>
          {(s.deliveries ?? []).map((d, i) => (
            <tr key={`${d.delivery}-${d.attempt}-${i}`}>
              <td>{date(d.created)}</td>
              <td>{d.event}</td>
              <td>{d.appName ?? '—'}</td>
              <td><code>{d.delivery.slice(0, 12)}</code></td>
              <td>{d.attempt}</td>
              <td>{d.ok ? <Badge kind="ok">{d.httpStatus ?? 'ok'}</Badge> : <Badge kind="error">{d.httpStatus ?? 'failed'}</Badge>} {d.error && <small>{d.error}</small>}</td>
              <td>{d.ms} ms</td>
            </tr>
          ))}
          {(s.deliveries ?? []).length === 0 && <tr><td colSpan={7}>Nothing delivered yet.</td></tr>}
        </tbody>
      </table>
    </Page>
  );
}
