import { createContext, useContext, useEffect, useRef, useState } from 'react';
import type { Api } from './api/client';
import { Link } from './components/ui';
import { navigate, useRoute } from './router';
import { LoginPage } from './pages/Login';
import { AppsPage } from './pages/Apps';
import { AppPage } from './pages/AppDetail';
import { TasksPage, TaskPage } from './pages/Tasks';
import { DeploymentsPage, DeploymentPage } from './pages/Deployments';
import { UsersPage, UserPage } from './pages/Users';
import { RolesPage, RolePage } from './pages/Roles';
import { SubscriptionsPage, SubscriptionPage } from './pages/Subscriptions';
import { ConsumptionPage } from './pages/Consumption';

const ApiContext = createContext<Api | null>(null);

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error('no API in context');
  return api;
}

const NAV: Array<[string, string]> = [
  ['apps', 'Apps'],
  ['tasks', 'Tasks'],
  ['deployments', 'Deployments'],
  ['users', 'Users'],
  ['roles', 'Roles'],
  ['subscriptions', 'Subscriptions'],
  ['consumption', 'Consumption'],
];

type State = 'signed-in' | 'signed-out' | 'expired';

export function App({ api }: { api: Api }) {
  const [state, setState] = useState<State>(api.session ? 'signed-in' : 'signed-out');
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  useEffect(() => api.on((e) => setState(e)), [api]);
  // A restored session: make sure it still holds (a stale one shows the expired page).
  useEffect(() => {
    if (api.session) void api.authToken().catch(() => undefined);
  }, [api]);
  // Focus the page heading after navigation, for keyboard and screen-reader users.
  useEffect(() => {
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route]);

  if (state !== 'signed-in' || !api.session) {
    return (
      <ApiContext.Provider value={api}>
        <main id="main" className="center">
          <LoginPage expired={state === 'expired'} onSignedIn={() => { setState('signed-in'); if (route === '' || route === 'login') navigate('apps', true); }} />
        </main>
      </ApiContext.Provider>
    );
  }
  const [section, id] = route.split('/').map(decodeURIComponent);
  return (
    <ApiContext.Provider value={api}>
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <span className="brand">ROCKIT Edge</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <Link to={to} className={section === to || (section === '' && to === 'apps') ? 'active' : ''}>{label}</Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who" data-testid="who">{api.session.username} @ {api.session.orgName}</span>
        <button type="button" onClick={() => void api.logout()}>Sign out</button>
      </header>
      <main id="main" ref={main}>
        <Route section={section ?? ''} id={id} />
      </main>
    </ApiContext.Provider>
  );
}

function Route({ section, id }: { section: string; id: string | undefined }) {
  switch (section) {
    case '':
    case 'login':
    case 'apps':
      return id ? <AppPage name={id} /> : <AppsPage />;
    case 'tasks':
      return id ? <TaskPage name={id} /> : <TasksPage />;
    case 'deployments':
      return id ? <DeploymentPage name={id} /> : <DeploymentsPage />;
    case 'users':
      return id ? <UserPage username={id} /> : <UsersPage />;
    case 'roles':
      return id ? <RolePage name={id} /> : <RolesPage />;
    case 'subscriptions':
      return id ? <SubscriptionPage name={id} /> : <SubscriptionsPage />;
    case 'consumption':
      return <ConsumptionPage />;
    default:
      return <p role="alert">No such page. <Link to="apps">Go to the apps</Link>.</p>;
  }
}
