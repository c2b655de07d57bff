// A small history router under the console's base (/apps/mc/): the path after the base, and
// navigation without a reload. The server answers index.html for every console path.
import { useEffect, useState } from 'react';

export const BASE = '/apps/mc/';

export function currentRoute(): string {
  const p = window.location.pathname;
  return p.startsWith(BASE) ? p.slice(BASE.length).replace(/\/+$/, '') : '';
}

const EVENT = 'rockit-console-navigate';

export function navigate(route: string, replace = false): void {
  const url = BASE + route.replace(/^\/+/, '');
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  window.dispatchEvent(new Event(EVENT));
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    window.addEventListener('popstate', update);
    window.addEventListener(EVENT, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(EVENT, update);
    };
  }, []);
  return route;
}
