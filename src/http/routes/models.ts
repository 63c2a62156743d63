// GET /models: what is loaded, at which resolution and precision, on which execution provider.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, ModelsResponse, ref } from '../schemas.js';

export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const schema = {
    operationId: 'getLoadedModels',
    summary: 'Loaded models',
    tags: ['models'],
    response: { 200: ref(ModelsResponse), ...errors(401, 503) },
  };
  app.get('/models', { schema }, async () => {
    const pool = app.service.requireEmbedder().pool;
    return { default: pool.get().name, models: pool.list().map((m) => m.info()) };
  });
};
