// GET /v1/collections (every collection of the store), GET /v1/collections/{name}, and an image item's
// picture for the web page: its file under the collection's root (never outside it), shrunk to a
// thumbnail, or a redirect to its URL.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import sharp from 'sharp';
import Type from 'typebox';
import { AppError, BadRequestError, CollectionNotFoundError, NotFoundError } from '../../core/errors.js';
import { realImagePath } from '../../retrieval/annotations.js';
import type { CollectionInfo } from '../../retrieval/store.js';
import { errorResponses } from '../errors.js';
import { ref } from '../schemas/common.js';
import { CollectionInfo as CollectionInfoSchema, CollectionList, type CollectionInfoT } from '../schemas/search.js';

/** A collection in the shape GET /v1/collections answers (and `albef-embed collections` prints). */
export const describeCollection = (c: CollectionInfo): CollectionInfoT => ({
  name: c.name,
  model: c.model,
  modality: c.modality,
  count: c.count,
  dim: c.dim,
  index: c.index,
  store: c.store,
  metadata_fields: c.metadataFields,
});

export const collectionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const store = async () => app.service.collectionStore();
  app.get(
    '/v1/collections',
    {
      schema: {
        operationId: 'listCollections',
        summary: 'The collections of the store',
        tags: ['retrieval'],
        response: { 200: ref(CollectionList), ...errorResponses(401, 503) },
      },
    },
    async () => ((await (await store())?.list()) ?? []).map(describeCollection),
  );
  app.get(
    '/v1/collections/:name',
    {
      schema: {
        operationId: 'getCollection',
        summary: 'One collection',
        tags: ['retrieval'],
        params: Type.Object({ name: Type.String() }),
        response: { 200: ref(CollectionInfoSchema), ...errorResponses(401, 404, 503) },
      },
    },
    async (req) => {
      const s = await store();
      if (!s) throw new CollectionNotFoundError(req.params.name);
      return describeCollection(await s.info(req.params.name));
    },
  );
  app.get(
    '/v1/collections/:name/items/:id/image',
    {
      schema: {
        operationId: 'getItemImage',
        summary: "An image item's picture, as a JPEG thumbnail",
        description:
          "The item's file under the collection's root, shrunk to fit `size` (default 256) px, or a redirect to its URL.",
        tags: ['retrieval'],
        params: Type.Object({ name: Type.String(), id: Type.String() }),
        querystring: Type.Object({
          size: Type.Optional(
            Type.String({ pattern: '^[0-9]{1,4}$', description: 'largest side in px, 16–1024 (default 256)' }),
          ),
        }),
        response: { 200: { type: 'string', format: 'binary' }, ...errorResponses(400, 401, 404, 502, 503) } as never,
      },
    },
    async (req, reply) => {
      const s = await store();
      if (!s) throw new CollectionNotFoundError(req.params.name);
      const info = await s.spec(req.params.name);
      if (info.modality !== 'image')
        throw new BadRequestError(`collection ${JSON.stringify(info.name)} holds texts, not images`);
      const [item] = await s.get(info.name, [req.params.id], false);
      if (!item)
        throw new NotFoundError(
          `collection ${JSON.stringify(info.name)} holds no item ${JSON.stringify(req.params.id)}`,
        );
      if (/^https?:\/\//i.test(item.source)) return reply.redirect(item.source, 302);
      if (!info.root)
        throw new AppError(
          'source_unavailable',
          `item ${JSON.stringify(item.id)}: no root to find ${item.source} under`,
        );
      let file: string;
      try {
        file = await realImagePath(info.root, item.source);
      } catch (e) {
        if (e instanceof AppError) throw e;
        throw new AppError(
          'source_unavailable',
          `item ${JSON.stringify(item.id)}: ${item.source} is not under ${info.root}`,
        );
      }
      const size = Math.min(1024, Math.max(16, Number(req.query.size ?? 256)));
      const jpeg = await sharp(file, { failOn: 'none' })
        .autoOrient()
        .resize(size, size, { fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: 80 })
        .toBuffer()
        .catch((e: Error) => {
          throw new AppError(
            'source_unavailable',
            `item ${JSON.stringify(item.id)}: cannot read ${item.source}: ${e.message}`,
          );
        });
      void reply.header('content-type', 'image/jpeg').header('cache-control', 'private, max-age=300');
      return jpeg;
    },
  );
};
