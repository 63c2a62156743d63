// Process entry for `albef-embed serve` (and `npm start`): configuration → app → listen → load models
// → ready; SIGTERM/SIGINT stop accepting, finish accepted work and exit 0.

import { join } from 'node:path';
import { pino } from 'pino';
import type { FetchLog } from '../convert/fetch-model.js';
import { buildApp } from '../http/app.js';
import { booleanWords, describeConfig, loadConfig } from '../service/config.js';
import { AppError, ConfigError } from '../core/errors.js';
import { findModelDirs } from '../inference/model-dir.js';

/** `serve --help`: every option of the configuration schema, with its allowed values, variable and default. */
export function serveUsage(): string {
  const rows = describeConfig();
  const w = Math.max(...rows.map((r) => r.flag.length)) + 2;
  const values = (r: (typeof rows)[number]): string =>
    r.values ? ` (one of ${r.values.filter(Boolean).join(', ')})` : '';
  return [
    'Usage: albef-embed serve [options]',
    '',
    'Runs the HTTP service. Every option also reads its environment variable (a flag wins); booleans',
    `are --x / --no-x, in the environment ${booleanWords()}.`,
    '',
    'Options:',
    ...rows.map((r) => `  ${r.flag.padEnd(w)}${r.description}${values(r)} [${r.env}, default ${r.default || '""'}]`),
    '',
  ].join('\n');
}

export async function serveCommand(argv: string[]): Promise<void> {
  const end = argv.indexOf('--');
  if ((end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(serveUsage());
    return;
  }
  let config;
  try {
    config = loadConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`albef-embed serve: ${e.message}\n\n${serveUsage()}`);
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
    // First start with --fetch: download and convert the official model, then serve it, logging
    // JSON lines as the service does.
    const { fetchModel } = await import('../convert/fetch-model.js');
    await fetchModel(
      { preset: config.fetch, out: join(config.models[0]!, config.fetch) },
      jsonFetchLog(config.logLevel),
    );
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
      const { image, text } = m.towers();
      app.log.info(
        {
          model: m.name,
          provider: { image: image.provider, text: text.provider },
          skipped: { image: image.skipped, text: text.skipped },
          max_batch: { image: image.maxBatch, text: text.maxBatch },
        },
        `execution providers: image ${image.provider}, text ${text.provider}`,
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

/** fetchModel's report as pino JSON lines: progress every tenth of the file, or every 10 s. */
function jsonFetchLog(level: string): FetchLog {
  const logger = pino({ level });
  let lastTenth = -1;
  let lastAt = 0;
  return {
    info: (m) => logger.info(m),
    warn: (m) => logger.warn(m),
    progress: (p) => {
      const tenth = p.total ? Math.floor((10 * p.received) / p.total) : -1;
      if (tenth === lastTenth && Date.now() - lastAt < 10_000) return;
      lastTenth = tenth;
      lastAt = Date.now();
      logger.info(
        { received: p.received, total: p.total, bytes_per_second: Math.round(p.bytesPerSecond) },
        'downloading',
      );
    },
  };
}
