/**
 * How a subscription's secrets are sealed (domain/secret-box.ts, installation key). The context
 * binds a sealed value to its row and field: copied into another row or field, it does not open.
 */
export const subscriptionSecretContext = (subscriptionId: string, field: 'url' | 'secret'): string =>
  `subscription:${subscriptionId}:${field}`;

/**
 * What the API shows of a target URL: scheme, host and port only. Paths, queries and user info
 * are left out because they often carry credentials (Slack's webhook URLs are the credential).
 * `url` must already be a valid absolute URL.
 */
export function displayUrl(url: string): string {
  const u = new URL(url);
  const rest = u.pathname !== '/' || u.search !== '' || u.username !== '' ? '/…' : '/';
  return `${u.protocol}//${u.host}${rest}`;
}
