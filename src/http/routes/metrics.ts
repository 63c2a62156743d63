// GET /metrics: Prometheus text exposition.

import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../core/metrics.js';

const schema = {
  operationId: 'getMetrics',
  summary: 'Prometheus metrics',
  tags: ['ops'],
  response: {
    200: {
      description: 'Prometheus text exposition format',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
  },
};

export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', { schema }, async (_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
