// Helpers every embedding route uses: vector encoding, the client-disconnect signal, timing headers.

import { setMaxListeners } from 'node:events';
import type { FastifyReply } from 'fastify';
import type { RequestTiming } from '../service/intake.js';
import { BadRequestError } from '../core/errors.js';
import type { Departure } from '../inference/batcher.js';

export type EncodingFormat = 'float' | 'base64';

/** Float arrays, or base64 of each vector's little-endian float32 bytes. */
export function encodeVectors(vectors: Float32Array[], format: EncodingFormat = 'float'): (number[] | string)[] {
  if (format === 'base64')
    return vectors.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
  return vectors.map((v) => Array.from(v));
}

/**
 * Whether the client disconnected before its reply, read from the socket when asked: enough for
 * text items, which the batcher only checks before a run, and cheaper per request than an
 * AbortController with a close listener (measured in the text route's CPU profile).
 */
export function clientLeft(reply: FastifyReply): Departure {
  const res = reply.raw;
  const socket = res.socket;
  return {
    get aborted() {
      return !res.writableFinished && (socket === null || socket.destroyed);
    },
  };
}

/** Aborts when the client disconnects before the reply is sent, so queued items can be dropped. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // every item of a request listens to it
  const res = reply.raw;
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** Exactly one of the named fields must be present: returns its name. */
export function exactlyOne<T extends object>(body: T, fields: (keyof T & string)[]): keyof T & string {
  const present = fields.filter((f) => body[f] !== undefined);
  if (present.length !== 1)
    throw new BadRequestError(
      `give exactly one of ${fields.map((f) => `"${f}"`).join(', ')}${present.length ? ` (got ${present.join(', ')})` : ''}`,
    );
  return present[0]!;
}

/** A request's timing record, filled in by the embedder and the batchers. */
export const newTiming = (): RequestTiming => ({ queueMs: 0, inferenceMs: 0, decodeMs: 0 });

const ms = (v: number): string => v.toFixed(3);

/**
 * TEI-style timing headers, in ms, each the longest among the request's items: x-queue-time (queued
 * until its batch started), x-inference-time (that batch's run), x-decode-time (images: decode and
 * resize), x-total-time (from the request's arrival until its vectors were ready).
 */
export function setTimingHeaders(reply: FastifyReply, timing: RequestTiming, images: boolean): void {
  void reply.header('x-queue-time', ms(timing.queueMs)).header('x-inference-time', ms(timing.inferenceMs));
  if (images) void reply.header('x-decode-time', ms(timing.decodeMs));
  void reply.header('x-total-time', ms(reply.elapsedTime));
}
