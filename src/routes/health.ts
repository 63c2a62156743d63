// GET /healthz (the process is alive) and GET /readyz (models loaded and warm, not draining).

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { StatusResponse } from '../schemas.js';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['ops'], response: { 200: StatusResponse } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { summary: 'Readiness', tags: ['ops'], response: { 200: StatusResponse, 503: StatusResponse } } }, async (_req, reply) => {
    const phase = app.service.phase;
    if (phase !== 'ready') void reply.status(503).header('retry-after', '1');
    return { status: phase };
  });
};
