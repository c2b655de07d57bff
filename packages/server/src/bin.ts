#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, loadConfig, type ConfigFlags } from './config/config.js';
import { createDb } from './db/dialect.js';
import { migrateToLatest } from './db/migrator.js';
import { buildServer, startServer } from './server.js';

const program = new Command();
program.name('rockit-edge').description('The open ROCKIT Edge service');

function config(flags: ConfigFlags) {
  try {
    return loadConfig(flags, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(e.message + '\n');
      process.exit(2);
    }
    throw e;
  }
}

program
  .command('serve')
  .description('runs the API (and, unless --no-worker, the task workers)')
  .option('--host <host>', 'address to bind (env ROCKIT_HOST)')
  .option('--port <port>', 'port (env ROCKIT_PORT)')
  .option('--data <dir>', 'data folder: SQLite file, admin token hash, local blobs (env ROCKIT_DATA)')
  .option('--no-worker', 'do not run task workers in this process')
  .action(async (opts: { host?: string; port?: string; data?: string; worker: boolean }) => {
    const cfg = config({ host: opts.host, port: opts.port, data: opts.data, worker: opts.worker === false ? false : undefined });
    const server = await startServer({ config: cfg });
    server.app.log.info({ address: server.address, database: cfg.database.kind }, 'rockit-edge listening');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      server.app.log.info({ signal }, 'draining');
      server.close().then(
        () => process.exit(0),
        (err) => {
          server.app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('worker')
  .description('runs task workers only (cluster mode: API nodes run `serve --no-worker`)')
  .option('--data <dir>', 'data folder (env ROCKIT_DATA)')
  .action(async (opts: { data?: string }) => {
    const cfg = config({ data: opts.data, worker: true });
    // The HTTP app is built (shared wiring) but never listens.
    const server = await buildServer({ config: cfg });
    server.app.log.info({ database: cfg.database.kind, concurrency: cfg.worker.concurrency }, 'rockit-edge worker running');
    const stop = () => {
      server.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program
  .command('migrate')
  .description('brings the database schema to the latest version, then exits')
  .option('--data <dir>', 'data folder (env ROCKIT_DATA)')
  .action(async (opts: { data?: string }) => {
    const cfg = config({ data: opts.data });
    const db = await createDb(cfg.database);
    try {
      const r = await migrateToLatest(db.db, db.schema);
      for (const m of r.results ?? []) process.stdout.write(`${m.status.toLowerCase()}: ${m.migrationName}\n`);
      process.stdout.write('database is at the latest migration\n');
    } finally {
      await db.close();
    }
  });

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`rockit-edge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
