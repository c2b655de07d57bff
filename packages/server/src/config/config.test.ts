import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('has embedded defaults: SQLite in ./data, 127.0.0.1:8080, documented lifetimes', () => {
    const c = loadConfig({}, {});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, sessionSeconds: 86400, authSeconds: 300, worker: { enabled: true } });
    expect(c.database).toEqual({ kind: 'sqlite', file: path.resolve('./data/rockit-edge.sqlite') });
    expect(c.adminToken).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.worker)).toBe(true);
  });
  it('reads ROCKIT_* variables; flags win', () => {
    const c = loadConfig(
      { port: '9000', data: '/tmp/x' },
      {
        ROCKIT_PORT: '7000', ROCKIT_HOST: '0.0.0.0', ROCKIT_DATABASE_URL: 'postgres://u@h/db', ROCKIT_DATABASE_SCHEMA: 'edge',
        ROCKIT_ADMIN_TOKEN: 'a-long-enough-admin-token-0123456789', ROCKIT_OPERATOR_ORG: 'ops', ROCKIT_AUTH_SECONDS: '60', ROCKIT_NO_WORKER: 'true',
      },
    );
    expect(c).toMatchObject({
      host: '0.0.0.0', port: 9000, dataDir: '/tmp/x', adminToken: 'a-long-enough-admin-token-0123456789', operatorOrg: 'ops', authSeconds: 60,
      database: { kind: 'pg', url: 'postgres://u@h/db', schema: 'edge' }, worker: { enabled: false },
    });
  });
  it('ROCKIT_PUBLIC_URL: an http(s) URL without query, fragment or credentials, kept without a trailing slash', () => {
    expect(loadConfig({}, {}).publicUrl).toBeUndefined();
    expect(loadConfig({}, { ROCKIT_PUBLIC_URL: 'https://edge.example.com/' }).publicUrl).toBe('https://edge.example.com');
    expect(loadConfig({}, { ROCKIT_PUBLIC_URL: 'http://10.0.0.5:8080/rockit/' }).publicUrl).toBe('http://10.0.0.5:8080/rockit');
    for (const bad of ['edge.example.com', 'ftp://edge.example.com', 'https://edge.example.com/?a=1', 'https://edge.example.com/#x', 'https://u:p@edge.example.com', 'https://edge.example.com/?', 'javascript:alert(1)']) {
      expect(() => loadConfig({}, { ROCKIT_PUBLIC_URL: bad }), bad).toThrow(/ROCKIT_PUBLIC_URL/);
    }
  });
  it('ROCKIT_ADMIN_TOKEN needs 32 characters or more', () => {
    expect(() => loadConfig({}, { ROCKIT_ADMIN_TOKEN: 'x'.repeat(31) })).toThrow(/ROCKIT_ADMIN_TOKEN must be at least 32 characters/);
    expect(loadConfig({}, { ROCKIT_ADMIN_TOKEN: 'x'.repeat(32) }).adminToken).toBe('x'.repeat(32));
  });
  it('login throttle: per (account, address) 5, per account 100, per address 50, admin token / API key failures per address 20', () => {
    expect(loadConfig({}, {}).login).toEqual({
      maxFailuresPerUserAddress: 5, maxFailuresPerUser: 100, maxFailuresPerAddress: 50, maxCredentialFailuresPerAddress: 20, windowSeconds: 900,
    });
    expect(loadConfig({}, { ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT: '7', ROCKIT_AUTH_MAX_FAILURES_PER_ADDRESS: '9' }).login).toMatchObject({
      maxFailuresPerUser: 7, maxCredentialFailuresPerAddress: 9,
    });
  });
  it('lists every problem at once with the variable names', () => {
    try {
      loadConfig({}, { ROCKIT_PORT: 'http', ROCKIT_DATABASE_URL: 'mysql://x', ROCKIT_ADMIN_TOKEN: 'short', ROCKIT_SCRYPT_COST: '3000', ROCKIT_LOG_LEVEL: 'loud' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as ConfigError).message;
      for (const name of ['ROCKIT_PORT', 'ROCKIT_DATABASE_URL', 'ROCKIT_ADMIN_TOKEN', 'ROCKIT_SCRYPT_COST', 'ROCKIT_LOG_LEVEL']) expect(msg).toContain(name);
      expect((e as ConfigError).problems).toHaveLength(5);
    }
  });
});
