// Prometheus metrics (prom-client), one registry per app so tests can build several apps.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Tower = 'image' | 'text' | 'image_states' | 'text_states' | 'fusion';
export type Stage = 'fetch' | 'decode_wait' | 'decode' | 'tokenize' | 'queue' | 'infer';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'albef_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'albef_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly items = new Counter({
    name: 'albef_embedded_items_total',
    help: 'items embedded',
    labelNames: ['model', 'modality'],
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'albef_rejected_items_total',
    help: 'items refused before inference (queue full, deadline, client gone)',
    labelNames: ['model', 'tower', 'reason'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'albef_queue_depth',
    help: 'items waiting for inference',
    labelNames: ['model', 'tower'],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'albef_batch_size',
    help: 'items per inference batch',
    labelNames: ['model', 'tower'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly stageDuration = new Histogram({
    name: 'albef_stage_duration_seconds',
    help: 'time per pipeline stage (fetch, decode_wait: for a decode worker and for running inferences to end, decode, tokenize, queue, infer)',
    labelNames: ['stage', 'model'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly stateCache = new Counter({
    name: 'albef_image_state_cache_total',
    help: 'image state cache lookups for image–text matching (result: hit, miss, shared: joined a computation under way)',
    labelNames: ['model', 'result'],
    registers: [this.registry],
  });
  readonly stateCacheEntries = new Gauge({
    name: 'albef_image_state_cache_entries',
    help: 'images held in the state cache',
    labelNames: ['model'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'albef_' });
  }
}
