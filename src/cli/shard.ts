// Sharding an indexing run over several machines (a Kubernetes Indexed Job): each item goes to the
// shard given by a hash of its id, so a shard's items depend only on the ids (not on file-system
// order, other items or the run), reruns of a shard see the same items, and the shards together hold
// every item exactly once.

import { createHash } from 'node:crypto';
import { UsageError } from '../core/errors.js';

export interface Shard {
  /** 0 … count − 1, as Kubernetes' JOB_COMPLETION_INDEX counts */
  index: number;
  count: number;
}

/** The shard an id belongs to: the first 32 bits of sha256(id as UTF-8), modulo the shard count. */
export function shardOf(id: string, count: number): number {
  return createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) % count;
}

const whole = (s: string | undefined): number | undefined =>
  s !== undefined && /^\d+$/.test(s.trim()) ? Number(s) : undefined;

/** From `--shard I/N`, or `--shards N` with I from JOB_COMPLETION_INDEX; undefined for a whole run. */
export function parseShard(
  shard: string | undefined,
  shards: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Shard | undefined {
  if (shard !== undefined && shards !== undefined) throw new UsageError('give --shard I/N or --shards N, not both');
  let index: number | undefined;
  let count: number | undefined;
  if (shard !== undefined) {
    const m = shard.match(/^(\d+)\/(\d+)$/);
    if (!m) throw new UsageError(`--shard must be I/N (e.g. 0/4), got ${JSON.stringify(shard)}`);
    index = Number(m[1]);
    count = Number(m[2]);
  } else if (shards !== undefined) {
    count = whole(shards);
    if (count === undefined) throw new UsageError(`--shards must be a whole number, got ${JSON.stringify(shards)}`);
    index = whole(env.JOB_COMPLETION_INDEX);
    if (index === undefined) {
      throw new UsageError(
        `--shards ${count} takes the shard index from JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job), which is ${env.JOB_COMPLETION_INDEX === undefined ? 'not set' : JSON.stringify(env.JOB_COMPLETION_INDEX)}; elsewhere use --shard I/${count}`,
      );
    }
  } else return undefined;
  if (count < 1) throw new UsageError('the shard count must be at least 1');
  if (index >= count)
    throw new UsageError(
      `shard index ${index} is not below the shard count ${count} (indices count from 0: 0/${count} … ${count - 1}/${count})`,
    );
  return { index, count };
}

/** `--out` with `{shard}` replaced by the shard index (one file per shard from one argument list). */
export function shardPath(out: string, shard: Shard | undefined): string {
  if (!out.includes('{shard}')) return out;
  if (!shard) throw new UsageError(`--out ${out} has {shard} but no --shard or --shards was given`);
  return out.replaceAll('{shard}', String(shard.index));
}
