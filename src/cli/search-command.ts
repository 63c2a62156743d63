// `albef-embed search`: one query against a collection, the same answer as POST /v1/search, through
// the same searcher (no HTTP involved).

import { UsageError } from '../core/errors.js';
import { resolveConfig } from '../service/config.js';
import { MAX_RERANK, type SearchQuery } from '../service/searcher.js';
import { intOption, parse } from './args.js';
import { imageArg, modelArg, withService } from './local-service.js';
import { storeSpec, STORE_OPTION_HELP } from './store-option.js';

export const SEARCH_USAGE = `
Usage: albef-embed search --model DIR --collection NAME (--text T | --image FILE_OR_URL | --id ID) [options]

Ranks the collection's items by the ITC cosine to the query and, with --rerank K, re-ranks the first K
by ALBEF's ITM match logit (a text against images, or an image against texts), as Retrieval.py does.
Prints {"collection", "model", "results": [{"id", "score", "itc", "itm_logits"?, "itm_prob"?, "source",
"metadata"}], "usage"} as POST /v1/search answers.

Options:
  --model DIR          the model directory the collection was indexed with
  --collection NAME    the collection
  --text T             a text query        --image FILE_OR_URL   an image query
  --id ID              an item of the collection: more like it (itself left out)
  --top-k N            results (default 10)
  --rerank K           re-rank the ITC top K with the ITM head (default 0: ITC only)
  --filter JSON        metadata fields that must equal these values, e.g. '{"album": "beach"}'
  --no-caption-cleanup a text query as given
${STORE_OPTION_HELP}
`;

export async function searchCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      collection: { type: 'string' },
      store: { type: 'string' },
      text: { type: 'string' },
      image: { type: 'string' },
      id: { type: 'string' },
      'top-k': { type: 'string' },
      rerank: { type: 'string' },
      filter: { type: 'string' },
      'no-caption-cleanup': { type: 'boolean' },
    },
    SEARCH_USAGE,
  );
  const queries = [values.text, values.image, values.id].filter((q) => q !== undefined).length;
  if (!values.model || !values.collection || queries !== 1)
    throw new UsageError(`give --model, --collection and one of --text, --image or --id\n\n${SEARCH_USAGE.trim()}`);
  // Every argument checked before a model loads: the same bounds as POST /v1/search.
  const topK = intOption(values['top-k'], '--top-k') ?? 10;
  const rerank = intOption(values.rerank, '--rerank', 0) ?? 0;
  if (rerank > MAX_RERANK) throw new UsageError(`--rerank must be at most ${MAX_RERANK} (got ${rerank})`);
  await modelArg(values.model);
  let filter: Record<string, string | number | boolean> | undefined;
  if (values.filter !== undefined) {
    const example = `e.g. '{"album": "beach"}'`;
    try {
      filter = JSON.parse(values.filter) as typeof filter;
    } catch (e) {
      throw new UsageError(`--filter must be a JSON object, ${example} (${(e as Error).message})`);
    }
    if (typeof filter !== 'object' || filter === null || Array.isArray(filter))
      throw new UsageError(`--filter must be a JSON object, ${example} (got ${values.filter})`);
  }
  const query: SearchQuery =
    values.text !== undefined
      ? { text: values.text }
      : values.id !== undefined
        ? { id: values.id }
        : { image: await imageArg(values.image!, '--image') };
  const config = resolveConfig({
    models: [values.model],
    warmup: false,
    store: storeSpec(values.store),
    allowPrivateUrls: true,
  });
  await withService(config, async (service) => {
    const searcher = await service.requireSearcher();
    if (!searcher) throw new UsageError(`no store at ${config.store}`);
    const answer = await searcher.search({
      collection: values.collection!,
      query,
      topK,
      rerank,
      filter,
      include: ['source', 'metadata'],
      captionCleanup: !values['no-caption-cleanup'],
    });
    process.stdout.write(JSON.stringify(answer, null, 2) + '\n');
  });
}
