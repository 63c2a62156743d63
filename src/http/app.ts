// Builds the Fastify app: plugins, cross-cutting hooks (request ids, auth, metrics), the JSON error
// contract, OpenAPI, and the routes. `albef-embed serve` (src/cli/serve-command.ts) and the tests both use it.

import { createHash, timingSafeEqual } from 'node:crypto';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyServerOptions,
  type preParsingAsyncHookHandler,
} from 'fastify';
import type { Config } from '../service/config.js';
import { describeError, errorBody, isOpenAIPath, withOpenAIErrorSchemas } from './errors.js';
import {
  AppError,
  ClientGoneError,
  OverloadedError,
  UnauthorizedError,
  UnsupportedMediaError,
} from '../core/errors.js';
import { Metrics } from '../core/metrics.js';
import { embedImageRoutes } from './routes/embed-image.js';
import { embedTextRoutes } from './routes/embed-text.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { modelRoutes } from './routes/models.js';
import { openaiEmbeddingRoutes } from './routes/openai-embeddings.js';
import { classifyRoutes } from './routes/classify.js';
import { openaiModelRoutes } from './routes/openai-models.js';
import { rerankRoutes } from './routes/rerank.js';
import { collectionRoutes } from './routes/collections.js';
import { searchRoutes } from './routes/search.js';
import { uiRoutes } from './routes/ui.js';
import { PACKAGE_VERSION } from '../core/paths.js';
import { SHARED_SCHEMAS } from './schemas/registry.js';
import { Service, type ServiceOptions } from '../service/service.js';

declare module 'fastify' {
  interface FastifyInstance {
    service: Service;
  }
  interface FastifyContextConfig {
    /** answers without an API key (the web page and its files) */
    openRoute?: boolean;
    /** how to send the body, said after a 415's list of the content types the route takes */
    mediaHint?: string;
  }
}

export type App = FastifyInstance;

/** Routes that answer without an API key: probes and scrapes come from the platform, not clients. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

export interface BuildOptions extends ServiceOptions {
  logger?: FastifyServerOptions['logger'];
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

const MEDIA_WORDS: Record<string, string> = { 'image/*': 'an image/* body' };

/** A preParsing hook refusing (415) a body whose content type is not one of `accepted` (`image/*` a family). */
function contentTypeCheck(accepted: string[], hint?: string): preParsingAsyncHookHandler {
  const takes = accepted.map((a) => MEDIA_WORDS[a] ?? a);
  const list = takes.length > 1 ? `${takes.slice(0, -1).join(', ')} or ${takes.at(-1)}` : takes[0]!;
  const ok = (type: string) =>
    accepted.some((a) => a === type || (a.endsWith('/*') && type.startsWith(a.slice(0, -1))));
  return async (req, _reply, payload) => {
    const header = req.headers['content-type'];
    const bodyless = req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length'] ?? 0) === 0;
    if (header === undefined && bodyless) return payload; // the schema says what is missing
    const type = header?.split(';')[0]!.trim().toLowerCase();
    if (type !== undefined && ok(type)) return payload;
    throw new UnsupportedMediaError(`send ${list} (got ${type || 'no content type'})${hint ? `: ${hint}` : ''}`);
  };
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    // Requests that still reach a closing server are served (the service drains, answering with
    // `connection: close`) or refused in the API's error shape, never with Fastify's own 503 body.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // `example` is OpenAPI's annotation (in the named schemas), not a validation keyword. `verbose`
    // gives each error its value and schema, which validation.ts turns into one sentence.
    ajv: {
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        useDefaults: true,
        allErrors: false,
        verbose: true,
        keywords: ['example'],
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = new Metrics();
  app.decorate('service', new Service(config, metrics, options));
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  app.addHook('onRoute', (route) => {
    if (isOpenAIPath(route.url) && route.schema?.response)
      route.schema.response = withOpenAIErrorSchemas(route.schema.response);
    // A body of a content type the route does not document is refused before it is read, saying
    // which types the route takes (its schema's list: JSON alone unless it names others).
    if (route.schema?.body) {
      const content = (route.schema.body as { content?: Record<string, unknown> }).content;
      const check = contentTypeCheck(content ? Object.keys(content) : ['application/json'], route.config?.mediaHint);
      route.preParsing = [check, ...[route.preParsing ?? []].flat()];
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });

  // Before the API key check: @fastify/cors answers preflights in its own onRequest hook, and browsers
  // send them without credentials; the hook also puts the CORS headers on a 401, which the page can
  // then read. The real request is still checked.
  if (config.cors)
    await app.register(cors, {
      origin: true,
      // A page on another origin may read the request id, the retry hint and the timing headers.
      exposedHeaders: [
        'x-request-id',
        'retry-after',
        'x-queue-time',
        'x-inference-time',
        'x-decode-time',
        'x-total-time',
      ],
      // An OPTIONS request that is not a preflight (no Origin) is an ordinary request, not a plain-text 400.
      strictPreflight: false,
    });

  if (config.apiKey.length > 0) {
    const keys = config.apiKey.map(digest);
    app.addHook('onRequest', async (req) => {
      const path = req.url.split('?')[0]!;
      if (OPEN_ROUTES.has(path) || req.routeOptions.config.openRoute) return;
      const auth = req.headers.authorization;
      const given = auth?.startsWith('Bearer ')
        ? auth.slice(7).trim()
        : (req.headers['x-api-key'] as string | undefined);
      // Compare fixed-length digests in constant time, against every key.
      const g = digest(given ?? '');
      let ok = false;
      for (const k of keys) ok = timingSafeEqual(g, k) || ok;
      if (!given || !ok) throw new UnauthorizedError();
    });
  }

  // While draining, each finished response closes its connection, so keep-alive sockets do not hold
  // the shutdown open until their idle timeout.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (app.service.phase === 'draining') void reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    const shape = describeError(err);
    const { status, code, message } = shape;
    if (err instanceof ClientGoneError) {
      req.log.debug('client went away before inference');
    } else if (status === 503 || status === 504) {
      req.log.warn({ code, status }, message); // load shedding: expected under overload, no stack
    } else if (status >= 500) {
      req.log.error({ err }, 'request failed');
    } else {
      req.log.info({ code, status }, message);
    }
    if (err instanceof OverloadedError) reply.header('retry-after', String(err.retryAfterS));
    void reply.status(status).send(errorBody(shape, req.url, req.id));
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    void reply
      .status(404)
      .send(errorBody({ status: 404, code: 'not_found', message: `no route ${req.method} ${path}` }, path, req.id));
  });

  await app.register(multipart, {
    limits: {
      fileSize: config.maxImageBytes,
      files: config.maxItems,
      // /classify repeats a `labels` field per label.
      fields: config.maxItems + 16,
      fieldSize: 16 * 1024,
      parts: 2 * config.maxItems + 16,
      headerPairs: 200,
    },
  });
  // JSON, multipart and raw images only: a text/plain body is refused (415), not parsed.
  app.removeContentTypeParser('text/plain');
  // A raw image body (Content-Type: image/*) is one image.
  app.addContentTypeParser(
    /^image\/[\w.+-]+$/,
    { parseAs: 'buffer', bodyLimit: config.maxImageBytes },
    (_req, body, done) => done(null, body),
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'albef-embed',
        version: PACKAGE_VERSION,
        description: 'ALBEF image and text embeddings (256-d, L2-normalised) faithful to the official ALBEF code.',
      },
      components: config.apiKey.length ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {},
      security: config.apiKey.length ? [{ bearer: [] }] : [],
    },
    refResolver: {
      buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes);
  await app.register(metricsRoutes, { metrics });
  await app.register(modelRoutes);
  await app.register(embedTextRoutes);
  await app.register(embedImageRoutes);
  await app.register(openaiEmbeddingRoutes);
  await app.register(openaiModelRoutes);
  await app.register(rerankRoutes);
  await app.register(classifyRoutes);
  await app.register(collectionRoutes);
  await app.register(searchRoutes);
  if (config.ui) await app.register(uiRoutes);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.addHook('onClose', async () => {
    await app.service.close();
  });
  return app;
}
