// GET /models: what each loaded model is and can do here.

import Type, { type Static } from 'typebox';
import { ref } from './common.js';

const SkippedProvider = Type.Object({ provider: Type.String(), reason: Type.String() });

export const ModelInfo = Type.Object(
  {
    name: Type.String(),
    dim: Type.Integer(),
    image_res: Type.Integer(),
    precision: Type.String(),
    provider: Type.Object(
      { image: Type.String(), text: Type.String() },
      { description: 'execution provider each tower runs on: cpu, cuda or webgpu' },
    ),
    provider_skipped: Type.Object(
      { image: Type.Array(SkippedProvider), text: Type.Array(SkippedProvider) },
      {
        description:
          'providers tried before the one each tower got (--provider auto, or default where CUDA is installed), with the reason each was passed over',
      },
    ),
    max_batch: Type.Object(
      { image: Type.Integer(), text: Type.Integer() },
      { description: 'largest batch per inference of each tower (by provider unless configured)' },
    ),
    sessions: Type.Object(
      { image: Type.Integer(), text: Type.Integer() },
      { description: 'ONNX Runtime sessions per tower, running batches side by side' },
    ),
    max_length: Type.Integer(),
    capabilities: Type.Array(Type.Union([Type.Literal('embed'), Type.Literal('rerank'), Type.Literal('classify')]), {
      description:
        'embed: /embed/*, /v1/embeddings; rerank: /v1/rerank and /classify with itm (the fusion part is loaded); classify: /classify',
    }),
    temp: Type.Optional(
      Type.Number({ description: "ALBEF's learned temperature (zero-shot scores use it clamped to [0.001, 0.5])" }),
    ),
    warnings: Type.Array(Type.String(), {
      description:
        'what the operator should know about this model here, e.g. int8 weights this CPU cannot multiply exactly (with the command that reconverts them)',
    }),
  },
  { $id: 'ModelInfo', description: 'one loaded model' },
);
export type ModelInfoT = Static<typeof ModelInfo>;

export const ModelsResponse = Type.Object(
  { default: Type.String(), models: Type.Array(ref(ModelInfo)) },
  {
    $id: 'ModelsResponse',
    description: 'the loaded models; `default` answers requests that name none',
    example: {
      default: 'albef_4m',
      models: [
        {
          name: 'albef_4m',
          dim: 256,
          image_res: 384,
          precision: 'fp32',
          provider: { image: 'cpu', text: 'cpu' },
          provider_skipped: { image: [], text: [] },
          max_batch: { image: 2, text: 64 },
          sessions: { image: 1, text: 1 },
          max_length: 30,
          capabilities: ['embed', 'rerank', 'classify'],
          temp: 0.0504,
          warnings: [],
        },
      ],
    },
  },
);
