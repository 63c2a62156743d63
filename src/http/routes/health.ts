// GET /healthz (the process is alive) and GET /readyz (models loaded and warm, the collection store
// reachable, not draining; otherwise why).

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ref, StatusResponse } from '../schemas/common.js';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const status = ref(StatusResponse);
  app.get(
    '/healthz',
    { schema: { operationId: 'getLiveness', summary: 'Liveness', tags: ['ops'], response: { 200: status } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness',
        tags: ['ops'],
        response: { 200: status, 503: status },
      },
    },
    async (_req, reply) => {
      const { phase, loadError } = app.service;
      if (phase === 'ready') {
        // Ready means searchable too: a store that cannot be reached takes the replica out of rotation.
        const problem = await app.service.storeProblem();
        if (!problem) return { status: phase };
        void reply.status(503).header('retry-after', '1');
        return { status: 'store_unavailable', reason: problem };
      }
      void reply.status(503).header('retry-after', '1');
      return phase === 'failed' && loadError ? { status: phase, reason: loadError.message } : { status: phase };
    },
  );
};
