// `albef-embed rerank` and `albef-embed classify`: one-off image–text matching as JSON on stdout, the
// same answers as POST /v1/rerank and POST /classify, through the same pipeline (no HTTP involved).

import { resolveConfig } from '../service/config.js';
import type { MatchItem } from '../service/matcher.js';
import { intOption, parse } from './args.js';
import { imageArg, modelArg, withService } from './local-service.js';
import { UsageError } from '../core/errors.js';

export const RERANK_USAGE = `
Usage: albef-embed rerank --model DIR --query TEXT --image FILE_OR_URL ... [options]
       albef-embed rerank --model DIR --query-image FILE_OR_URL --text TEXT ... [options]

Scores every document against the query with ALBEF's image–text matching head and prints
{"model", "results": [{"index", "relevance_score", "itm_logits", "itc"}]}, best first.

Options:
  --model DIR            model directory (with the fusion part: converter 1.2.0 or later)
  --query TEXT           a text query, against --image documents
  --query-image FILE     an image query (file or http(s) URL), against --text documents
  --image FILE_OR_URL    an image document (repeat)      --text TEXT   a text document (repeat)
  --top-n N              keep the N best
  --no-caption-cleanup   texts as given (ALBEF's pre_caption is on by default)
`;

export const CLASSIFY_USAGE = `
Usage: albef-embed classify --model DIR --image FILE_OR_URL ... --label LABEL --label LABEL ... [options]

Zero-shot classification: for each image, softmax over the labels of cos(image, text) / temp, and
with --itm each label's match probability; prints {"model", "results": [[{"label", "score"}, ...]]}.

Options:
  --model DIR            model directory (converter 1.2.0 or later)
  --image FILE_OR_URL    an image (repeat)
  --label LABEL          a candidate label (at least two)
  --template T           text per label, {} replaced by the label (default "{}", e.g. "a photo of a {}")
  --itm                  add the ITM match probability of each label
  --top-k K              keep the K best labels per image
  --no-caption-cleanup   label texts as given
`;

// The matching graphs load only where they run (rerank, classify --itm).
const oneOffConfig = (model: string, items: number, fusion: boolean) =>
  resolveConfig({
    models: [model],
    warmup: false,
    fusion,
    allowPrivateUrls: true,
    maxItems: Math.max(items, 1),
    stateCacheImages: 0,
  });

export async function rerankCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      query: { type: 'string' },
      'query-image': { type: 'string' },
      image: { type: 'string', multiple: true },
      text: { type: 'string', multiple: true },
      'top-n': { type: 'string' },
      'no-caption-cleanup': { type: 'boolean' },
    },
    RERANK_USAGE,
  );
  const textQuery = values.query !== undefined;
  const docs = (textQuery ? values.image : values.text) ?? [];
  if (
    !values.model ||
    textQuery === (values['query-image'] !== undefined) ||
    docs.length === 0 ||
    (textQuery ? values.text : values.image)
  ) {
    throw new UsageError(
      `give --model and either --query with --image documents or --query-image with --text documents\n\n${RERANK_USAGE.trim()}`,
    );
  }
  const topN = intOption(values['top-n'], '--top-n');
  await modelArg(values.model);
  const query: MatchItem = textQuery
    ? { text: values.query! }
    : { image: await imageArg(values['query-image']!, '--query-image') };
  const documents: MatchItem[] = textQuery
    ? await Promise.all(docs.map(async (f) => ({ image: await imageArg(f, '--image') })))
    : docs.map((text) => ({ text }));
  await withService(oneOffConfig(values.model, docs.length, true), async (service) => {
    const model = service.requireEmbedder().model();
    const scores = await service
      .requireMatcher()
      .rerank(model, query, documents, { captionCleanup: !values['no-caption-cleanup'] });
    process.stdout.write(JSON.stringify({ model: model.name, results: scores.slice(0, topN) }) + '\n');
  });
}

export async function classifyCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      image: { type: 'string', multiple: true },
      label: { type: 'string', multiple: true },
      template: { type: 'string' },
      itm: { type: 'boolean' },
      'top-k': { type: 'string' },
      'no-caption-cleanup': { type: 'boolean' },
    },
    CLASSIFY_USAGE,
  );
  const images = values.image ?? [];
  const labels = values.label ?? [];
  if (!values.model || images.length === 0 || labels.length < 2)
    throw new UsageError(`give --model, at least one --image and at least two --label\n\n${CLASSIFY_USAGE.trim()}`);
  const topK = intOption(values['top-k'], '--top-k');
  await modelArg(values.model);
  const inputs = await Promise.all(images.map((f) => imageArg(f, '--image')));
  await withService(
    oneOffConfig(values.model, Math.max(images.length, labels.length), values.itm ?? false),
    async (service) => {
      const model = service.requireEmbedder().model();
      const scores = await service.requireMatcher().classify(model, inputs, labels, {
        template: values.template ?? '{}',
        itm: values.itm ?? false,
        captionCleanup: !values['no-caption-cleanup'],
      });
      const results = scores.map((perImage) => perImage.slice(0, topK));
      process.stdout.write(JSON.stringify({ model: model.name, results }) + '\n');
    },
  );
}
