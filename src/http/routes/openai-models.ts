// GET /v1/models and GET /v1/models/{model}: the loaded models in OpenAI's list shape, which clients
// (LiteLLM, Open WebUI, LangChain, the OpenAI SDKs) probe before embedding; each names what it embeds
// and its vector length.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { LoadedModel } from '../../inference/model-pool.js';
import { ref } from '../schemas/common.js';
import { OpenAIModel, OpenAIModelList, type OpenAIModelT } from '../schemas/openai.js';
import { errorResponses } from '../errors.js';

function describe(m: LoadedModel): OpenAIModelT {
  return {
    id: m.name,
    object: 'model',
    created: Math.floor(Date.parse(m.manifest.created) / 1000) || 0,
    owned_by: 'albef-embed',
    modalities: ['text', 'image'],
    dimensions: m.dim,
  };
}

export const openaiModelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/models',
    {
      schema: {
        operationId: 'listModels',
        summary: 'OpenAI-compatible model list',
        tags: ['models'],
        response: { 200: ref(OpenAIModelList), ...errorResponses(401, 503) },
      },
    },
    async () => ({ object: 'list' as const, data: app.service.requireEmbedder().pool.list().map(describe) }),
  );
  app.get(
    '/v1/models/:model',
    {
      schema: {
        operationId: 'retrieveModel',
        summary: 'One model, OpenAI-compatible',
        tags: ['models'],
        params: Type.Object({ model: Type.String() }),
        response: { 200: ref(OpenAIModel), ...errorResponses(401, 404, 503) },
      },
    },
    async (req) => describe(app.service.requireEmbedder().model(req.params.model)),
  );
};
