// `albef-embed eval`: recall as the ALBEF paper reports it, on any annotation file in ALBEF's format
// (src/service/evaluation.ts does the work). The report is JSON on stdout (and in --out); progress
// with an ETA goes to stderr; an interrupted run resumes from its work directory.

import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { parseAnnotations } from '../retrieval/annotations.js';
import { sha256Hex } from '../retrieval/eval-work.js';
import { resolveConfig } from '../service/config.js';
import { evaluateRetrieval, MIN_K_TEST, type EvalProgress } from '../service/evaluation.js';
import { inputFile, inputFolder, intOption, log, outputFile, parse } from './args.js';
import { withService } from './local-service.js';
import { stageProgress } from './stage-progress.js';

export const EVAL_USAGE = `
Usage: albef-embed eval --model DIR --ann ANN.json --image-root DIR [options]

Runs ALBEF's retrieval evaluation (Retrieval.py's evaluation() + itm_eval()) on an annotation file in
ALBEF's format (flickr30k_test.json, coco_test.json: a list of {"image", "caption": [...]}): the ITC
cosines pick each image's k best texts and each text's k best images, the ITM match logit re-ranks
them, and R@1/5/10 are counted both ways. Prints {"itm": {...}, "itc": {...}, "k_test", "images",
"texts", "model", "pairs"}: "itm" is the paper's protocol, "itc" the cosines alone.

Options:
  --model DIR        model directory with the matching part (fine-tuned retrieval checkpoints give
                     the paper's fine-tuned rows)
  --ann FILE         annotation file (ALBEF's format)
  --image-root DIR   the folder the annotation's image paths are relative to
  --k-test N         candidates re-ranked per query (default 128, ALBEF's Flickr30K setting; COCO
                     uses 256; at least ${MIN_K_TEST})
  --out FILE         also write the report there
  --work DIR         where the work is kept, so that a rerun resumes (default
                     .albef-eval/<annotation>-<model>-k<N>); removed after a complete run
  --keep-work        keep the work directory after a complete run
  --pairs-per-run N  most image–text pairs per fusion inference (default 64, measured best)
`;

export async function evalCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      ann: { type: 'string' },
      'image-root': { type: 'string' },
      'k-test': { type: 'string' },
      out: { type: 'string' },
      work: { type: 'string' },
      'keep-work': { type: 'boolean' },
      'pairs-per-run': { type: 'string' },
    },
    EVAL_USAGE,
  );
  if (!values.model || !values.ann || !values['image-root'])
    throw new UsageError(`give --model, --ann and --image-root\n\n${EVAL_USAGE.trim()}`);
  await inputFolder(values.model, '--model');
  await inputFile(values.ann, '--ann');
  await inputFolder(values['image-root'], '--image-root');
  if (values.out) await outputFile(values.out);
  const kTest = intOption(values['k-test'], '--k-test', MIN_K_TEST) ?? 128;
  const pairsPerRun = intOption(values['pairs-per-run'], '--pairs-per-run') ?? 64;
  const annBytes = await readFile(values.ann);
  const annotations = parseAnnotations(annBytes.toString('utf8'), { source: values.ann });

  const config = resolveConfig({
    models: [values.model],
    warmup: false,
    fusion: true,
    stateCacheImages: 0,
    requestTimeoutMs: 24 * 3600_000,
  });
  const report = await withService(config, async (service) => {
    const model = service.requireEmbedder().model();
    const workDir =
      values.work ?? join('.albef-eval', `${basename(values.ann!).replace(/\.json$/i, '')}-${model.name}-k${kTest}`);
    const progress = stageProgress();
    const onSignal = (): void => {
      progress.done();
      log(`interrupted: rerun the same command to resume (the work so far is kept in ${workDir})`);
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const r = await evaluateRetrieval(model, service.requireIntake(), {
        annotations,
        annotationsSha256: sha256Hex(annBytes),
        imageRoot: values['image-root']!,
        kTest,
        workDir,
        pairsPerRun,
        onProgress: (p: EvalProgress) => progress.update(p),
      });
      progress.done();
      if (!values['keep-work']) await rm(workDir, { recursive: true, force: true });
      return r;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
  const json = JSON.stringify(report, null, 2);
  if (values.out) await writeFile(values.out, json + '\n');
  process.stdout.write(json + '\n');
}
