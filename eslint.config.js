// Lint rules that keep the architecture visible: imports point one way
// (http -> services -> (db, queue, storage, publish, webhooks) -> domain; task-handlers sit above queue and webhooks,
// beside services; engine and contract import nothing of ours).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'data/**', '.bench-data/**', 'packages/console/test-artifacts/**', 'packages/console/src/api/schema.d.ts', 'packages/console/src/api/resources.gen.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // The web console runs in the browser and talks to the public API only.
    files: ['packages/console/src/**/*.{ts,tsx}'],
    ignores: ['packages/console/src/**/*.test.{ts,tsx}', 'packages/console/src/e2e/**'],
    languageOptions: { globals: globals.browser },
    rules: restrict([
      { group: ['@rockit/*', '**/server/**', '**/cli/**', '**/engine/**', 'node:*'], message: 'the console is a browser app on the public API' },
    ]),
  },
  {
    files: ['packages/console/scripts/**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['packages/engine/src/**/*.ts'],
    rules: restrict([
      { group: ['@rockit/server', '@rockit/cli', '@rockit/gamegen', '**/server/**', '**/cli/**', '**/gamegen/**'], message: 'engine imports nothing of ours' },
      { group: ['kysely', 'fastify', 'pg', 'better-sqlite3', '@fastify/*'], message: 'engine has no database or HTTP server' },
    ]),
  },
  {
    files: ['packages/engine/src/**/*.ts'],
    ignores: ['packages/engine/src/**/*.test.ts'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'engine never reads process.env' }] },
  },
  {
    files: ['packages/client/src/**/*.ts'],
    rules: restrict([
      { group: ['@rockit/server', '@rockit/cli', '@rockit/gamegen', '**/server/**', '**/cli/**', '**/gamegen/**'], message: 'client imports the engine only and talks HTTP' },
      { group: ['kysely', 'fastify', 'pg', 'better-sqlite3', '@fastify/*'], message: 'client has no database or HTTP server' },
    ]),
  },
  {
    // The wire contract: schemas and their types, shared by the server and the CLI.
    files: ['packages/contract/src/**/*.ts'],
    rules: restrict([
      { group: ['@rockit/*', '**/server/**', '**/cli/**', '**/engine/**', '**/client/**', '**/gamegen/**', '**/console/**'], message: 'the contract imports nothing of ours' },
      { group: ['node:*', 'kysely', 'fastify', '@fastify/*', 'pg', 'better-sqlite3'], message: 'the contract is TypeBox schemas only' },
    ]),
  },
  {
    // The CLI takes types from the contract, never values: it loads no schema at run time.
    files: ['packages/cli/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [{ name: '@rockit/contract', message: 'import types only (import type) from the contract', allowTypeImports: true }],
      }],
    },
  },
  {
    files: ['packages/gamegen/src/**/*.ts', 'packages/cli/src/**/*.ts'],
    rules: restrict([{ group: ['@rockit/server', '**/server/src/**'], message: 'talk to the server over HTTP only' }]),
  },
  {
    files: ['packages/server/src/domain/**/*.ts'],
    rules: restrict([
      { group: ['**/http/**', '**/services/**', '**/db/**', '**/queue/**', '**/task-handlers/**', '**/storage/**', '**/publish/**', '**/webhooks/**'], message: 'domain is pure' },
      { group: ['kysely', 'fastify', '@fastify/*', 'pg', 'better-sqlite3'], message: 'domain is pure' },
    ]),
  },
  {
    files: ['packages/server/src/{db,queue,storage,publish,webhooks}/**/*.ts'],
    rules: restrict([
      { group: ['**/http/**', '**/services/**'], message: 'imports point one way: http -> services -> (db, queue, storage) -> domain' },
      { group: ['**/task-handlers/**'], message: 'task handlers sit above queue/ and webhooks/: the queue runs them, it never imports them' },
      { group: ['fastify', '@fastify/*'], message: 'Fastify only in http/' },
    ]),
  },
  {
    files: ['packages/server/src/services/**/*.ts'],
    rules: restrict([
      { group: ['**/http/**'], message: 'nothing imports http' },
      { group: ['fastify', '@fastify/*'], message: 'Fastify only in http/' },
    ]),
  },
  {
    files: ['packages/server/src/**/*.ts'],
    ignores: ['packages/server/src/config/**', 'packages/server/src/**/*.test.ts', 'packages/server/src/test-support/**', 'packages/server/src/bin.ts'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'configuration is read once in config/' }] },
  },
  {
    // Size limits (issue 11): no file over 600 lines, no function over 120 (blank lines and comments not counted),
    // outside tests, test support and generated code.
    files: ['packages/*/src/**/*.{ts,tsx}', 'packages/*/scripts/**/*.mjs'],
    ignores: ['**/*.test.{ts,tsx}', '**/e2e/**', '**/hostile/**', '**/test-support/**', '**/test-support.ts', '**/*.gen.ts', '**/*.d.ts'],
    rules: {
      'max-lines': ['error', { max: 600 }],
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true }],
    },
  },
);
