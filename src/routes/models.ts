// GET /models: what is loaded, at which resolution and precision, on which execution provider.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, ModelsResponse } from '../schemas.js';

export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/models', { schema: { summary: 'Loaded models', tags: ['models'], response: { 200: ModelsResponse, ...errors(401, 503) } } }, async () => {
    const pool = app.service.requireEmbedder().pool;
    return { default: pool.get().name, models: pool.list().map((m) => m.info()) };
  });
};
