// `albef-embed merge --out vectors.jsonl PART...`: joins the JSON lines of a sharded indexing run
// into one file, checking what `cat` would not: every line whole (a torn line means a shard was
// interrupted and not rerun), one vector length and one kind of vectors (modality and model, see
// vector-lines.ts) throughout, and every id exactly once across the parts. The output is written to a
// temporary file and renamed into place only when all holds, and never over a file without --force.

import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { AppError, UsageError } from '../core/errors.js';
import { pathExists } from '../core/fs-utils.js';
import { inputFile, log, outputFile, parse } from './args.js';
import { describeVectors, lineIdentity, sameVectors, type VectorLine, type VectorsIdentity } from './vector-lines.js';

export const MERGE_USAGE = `
Usage: albef-embed merge --out FILE PART.jsonl...

Joins the parts of a sharded \`albef-embed embed --shard\` run (e.g. /output/part-*.jsonl) into one
JSON lines file, in the order given. Refuses torn or invalid lines, vectors of different lengths,
image and text vectors together, vectors of different models, and ids found more than once, and
then writes nothing.

Options:
  --out FILE   the merged file (its folder is created)
  --force      replace FILE if it exists
`;

export interface MergeResult {
  /** vectors written, per part and in all */
  perPart: number[];
  total: number;
  dim: number;
  /** lines without model and modality (older files): merged, not checked */
  unchecked: number;
}

export async function mergeParts(parts: string[], out: string, force = false): Promise<MergeResult> {
  if (parts.some((p) => resolve(p) === resolve(out))) throw new UsageError(`--out ${out} is also one of the parts`);
  if (!force && (await pathExists(out)))
    throw new AppError('already_exists', `${out} already exists (use --force to replace it)`);
  const tmp = `${out}.tmp-${process.pid}`;
  const ws = createWriteStream(tmp);
  ws.on('error', () => {}); // reported by finished() below
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const perPart: number[] = [];
  let dim = -1;
  let unchecked = 0;
  /** The kind of vectors of the first line that says it, and where that line is. */
  let kind: { identity: VectorsIdentity; where: string } | undefined;
  try {
    for (const part of parts) {
      let n = 0;
      let written = 0;
      for await (const line of createInterface({
        input: createReadStream(part, 'utf8'),
        crlfDelay: Number.POSITIVE_INFINITY,
      })) {
        n++;
        if (!line.trim()) continue;
        let row: Partial<VectorLine>;
        try {
          row = JSON.parse(line) as typeof row;
        } catch {
          throw new AppError(
            'torn_line',
            `${part} line ${n} is not a whole JSON line: that shard was interrupted; rerun it (it resumes where it stopped), then merge again`,
          );
        }
        if (typeof row.id !== 'string' || !Array.isArray(row.embedding))
          throw new AppError('invalid_line', `${part} line ${n} is not {"id": string, "embedding": [numbers]}`);
        const identity = lineIdentity(row);
        if (!identity) unchecked++;
        else if (!kind) kind = { identity, where: `${part} line ${n}` };
        else if (!sameVectors(kind.identity, identity))
          throw new AppError(
            'mixed_vectors',
            `${part} line ${n} holds ${describeVectors(identity)}, but ${kind.where} holds ${describeVectors(kind.identity)}: merge the parts of one run only`,
          );
        if (dim < 0) dim = row.embedding.length;
        else if (row.embedding.length !== dim)
          throw new AppError(
            'mixed_dims',
            `${part} line ${n} has a ${row.embedding.length}-d vector; the parts before had ${dim}-d ones`,
          );
        if (seen.has(row.id)) {
          duplicates.push(row.id);
          continue;
        }
        seen.add(row.id);
        written++;
        if (!ws.write(line + '\n')) await once(ws, 'drain');
      }
      perPart.push(written);
    }
    if (duplicates.length) {
      const shown = duplicates
        .slice(0, 5)
        .map((d) => JSON.stringify(d))
        .join(', ');
      throw new AppError(
        'duplicate_ids',
        `${duplicates.length} ids appear more than once across the parts (${shown}${duplicates.length > 5 ? ', …' : ''}): were they written with different --shard settings?`,
      );
    }
    ws.end();
    await finished(ws);
    await rename(tmp, out);
  } catch (e) {
    ws.end();
    await finished(ws).catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  return { perPart, total: seen.size, dim: Math.max(dim, 0), unchecked };
}

export async function mergeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, force: { type: 'boolean' } }, MERGE_USAGE, {
    positionals: Number.POSITIVE_INFINITY,
  });
  if (!values.out || positionals.length === 0)
    throw new UsageError(`give --out and the parts to merge\n\n${MERGE_USAGE.trim()}`);
  for (const p of positionals) await inputFile(p, '', 'merge takes the part files, e.g. parts/part-*.jsonl');
  await outputFile(values.out);
  const r = await mergeParts(positionals, values.out, values.force);
  if (r.unchecked)
    log(`${r.unchecked} lines have no model or modality (an older albef-embed wrote them): merged, not checked`);
  log(
    `${values.out}: ${r.total} vectors (${r.perPart.join(' + ')} from ${positionals.length} parts), ${r.dim}-d, no duplicate ids`,
  );
}
