// GET /models: what is loaded, at which resolution and precision, on which execution provider.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ref } from '../schemas/common.js';
import type { LoadedModel } from '../../inference/model-pool.js';
import { ModelsResponse, type ModelInfoT } from '../schemas/models.js';
import { errorResponses } from '../errors.js';

/** A loaded model in the answer's shape. */
export function modelInfo(m: LoadedModel): ModelInfoT {
  const { image, text } = m.towers();
  const temp = m.manifest.fusion?.temp;
  return {
    name: m.name,
    dim: m.dim,
    image_res: m.imageRes,
    precision: m.manifest.precision,
    provider: { image: image.provider, text: text.provider },
    provider_skipped: { image: image.skipped, text: text.skipped },
    max_batch: { image: image.maxBatch, text: text.maxBatch },
    sessions: { image: image.sessions, text: text.sessions },
    max_length: m.manifest.preprocessing.text.max_length,
    capabilities: m.capabilities,
    ...(temp !== undefined ? { temp } : {}),
    warnings: m.warnings,
  };
}

export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const schema = {
    operationId: 'getLoadedModels',
    summary: 'Loaded models',
    tags: ['models'],
    response: { 200: ref(ModelsResponse), ...errorResponses(401, 503) },
  };
  app.get('/models', { schema }, async () => {
    const pool = app.service.requireEmbedder().pool;
    return { default: pool.get().name, models: pool.list().map(modelInfo) };
  });
};
