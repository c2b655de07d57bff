import { describe, expect, it } from 'vitest';
import { subscribesTo } from './emit.js';
import { displayUrl, subscriptionSecretContext } from './subscription-secrets.js';

describe('subscription URL display and event filter', () => {
  it('shows scheme, host and port only, hiding paths, queries and user info', () => {
    expect(displayUrl('https://hooks.slack.com/services/T1/B2/XYZ')).toBe('https://hooks.slack.com/…');
    expect(displayUrl('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080/');
    expect(displayUrl('https://example.com?token=abc')).toBe('https://example.com/…');
    expect(displayUrl('https://user:pw@example.com/')).toBe('https://example.com/…');
    expect(displayUrl('https://user:pw@example.com/')).not.toContain('pw');
  });

  it('binds sealed values to the row and the field', () => {
    expect(subscriptionSecretContext('a', 'url')).not.toBe(subscriptionSecretContext('a', 'secret'));
    expect(subscriptionSecretContext('a', 'url')).not.toBe(subscriptionSecretContext('b', 'url'));
  });

  it('matches every event without a list, only the listed ones with one', () => {
    expect(subscribesTo(null, 'trace.error')).toBe(true);
    expect(subscribesTo('["deploy.end"]', 'deploy.end')).toBe(true);
    expect(subscribesTo('["deploy.end"]', 'deploy.error')).toBe(false);
  });
});
