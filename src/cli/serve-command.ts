// Process entry for `albef-embed serve` (and `npm start`): configuration → app → listen → load models
// → ready; SIGTERM/SIGINT stop accepting, finish accepted work and exit 0.

import { join } from 'node:path';
import { buildApp } from '../http/app.js';
import { ConfigError, describeConfig, loadConfig } from '../service/config.js';
import { AppError } from '../core/errors.js';
import { findModelDirs } from '../inference/model-dir.js';

function usage(): string {
  const rows = describeConfig();
  const w = Math.max(...rows.map((r) => r.flag.length)) + 2;
  return [
    'Usage: albef-embed serve [options]   (every option also reads its environment variable)',
    '',
    ...rows.map((r) => `  ${r.flag.padEnd(w)}${r.description} [${r.env}, default ${r.default || '""'}]`),
    '',
  ].join('\n');
}

export async function serveCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  let config;
  try {
    config = loadConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`albef-embed serve: ${e.message}\n\n${usage()}`);
      process.exit(2);
    }
    throw e;
  }
  let models: string[];
  try {
    models = await findModelDirs(config.models);
  } catch (e) {
    if (!(e instanceof AppError && e.code === 'no_models')) throw e;
    if (!config.fetch) {
      process.stderr.write(`albef-embed serve: ${e.message}\n`);
      process.exit(1);
    }
    // First start with --fetch: download and convert the official model, then serve it.
    const { fetchModel } = await import('./fetch-command.js');
    await fetchModel({ preset: config.fetch, out: join(config.models[0]!, config.fetch) });
    models = await findModelDirs(config.models);
  }

  const app = await buildApp({ ...config, models });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal }, 'draining: no new connections; finishing accepted requests');
    app.service.beginDrain();
    app.close().then(
      () => {
        app.log.info('stopped');
        process.exit(0);
      },
      (e: unknown) => {
        app.log.error({ err: e }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  await app.listen({ host: config.host, port: config.port });
  try {
    const started = Date.now();
    await app.service.start();
    for (const m of app.service.pool?.list() ?? []) {
      const { provider, provider_skipped: skipped, max_batch } = m.info();
      app.log.info(
        { model: m.name, provider, skipped, max_batch },
        `execution providers: image ${provider.image}, text ${provider.text}`,
      );
      for (const warning of m.warnings) app.log.warn({ model: m.name }, warning);
    }
    app.log.info({ models: app.service.pool?.names, ms: Date.now() - started }, 'ready');
  } catch (e) {
    app.log.fatal({ err: e }, 'models failed to load');
    if (config.onLoadError === 'not-ready') return; // keeps serving /healthz 200, /readyz 503 "failed"
    await app.close().catch(() => undefined);
    process.exit(1);
  }
}
