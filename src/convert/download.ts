// Downloads a checkpoint: resumable (HTTP Range on a `.part` file), retried with backoff when a retry
// can help, checked against the size the server declares, the MD5 Google Cloud Storage sends in
// `x-goog-hash`, and a known sha256 when there is one. Only a verified file is renamed into place. A
// failure says why (download-failure.ts), not undici's bare "fetch failed".

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { Agent, fetch } from 'undici';
import { fileSize } from '../core/fs-utils.js';
import { unpausedResponses } from '../core/unpaused-responses.js';
import { describeHttpStatus, describeNetworkFailure, type FailureReason } from './download-failure.js';
import { DownloadError } from '../core/errors.js';

export interface DownloadProgress {
  received: number;
  total: number | undefined;
  bytesPerSecond: number;
}

export interface RetryInfo {
  /** The attempt that failed, from 1; `of` is how many there may be in all. */
  attempt: number;
  of: number;
  reason: string;
  /** Bytes kept in the `.part` file, where the next attempt resumes. */
  resumeAt: number;
  delayMs: number;
}

export interface DownloadOptions {
  url: string;
  dest: string;
  sha256?: string;
  retries?: number;
  /** Milliseconds before the first retry; doubles each time. */
  backoffMs?: number;
  /** Limit for connecting, for the response to start, and for any pause in the transfer (default 30 s). */
  timeoutMs?: number;
  /** DNS lookup (tests inject one); the system resolver by default. */
  lookup?: LookupFunction;
  onProgress?: (p: DownloadProgress) => void;
  onRetry?: (info: RetryInfo) => void;
}

const fail = (url: string, f: FailureReason): DownloadError => new DownloadError(url, f.reason, f.transient);

async function hashFile(path: string, ...hashes: Hash[]): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 }))
    for (const h of hashes) h.update(chunk as Buffer);
}

/** The MD5 in `x-goog-hash: crc32c=…,md5=<base64>`, as hex. */
function googMd5(header: string | string[] | undefined): string | undefined {
  const all = Array.isArray(header) ? header.join(',') : (header ?? '');
  const m = all.match(/md5=([A-Za-z0-9+/=]+)/);
  return m ? Buffer.from(m[1]!, 'base64').toString('hex') : undefined;
}

export async function download(
  o: DownloadOptions,
): Promise<{ bytes: number; sha256: string; md5: string; resumed: boolean }> {
  const part = `${o.dest}.part`;
  const retries = o.retries ?? 5;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const url = new URL(o.url);
  const agent = new Agent({
    connect: { timeout: timeoutMs, ...(o.lookup ? { lookup: o.lookup } : {}) },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  // A server that closes the connection after the body must not crash undici (unpaused-responses.ts).
  // A small backlog: bytes received but not yet on disk are lost when the connection drops, and a
  // resumed download starts from what is on disk.
  const dispatcher = agent.compose(unpausedResponses({ maxBacklogBytes: 1 << 20 }));
  let resumed = false;
  let total: number | undefined;
  let expectedMd5: string | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      const have = await fileSize(part);
      try {
        const res = await fetch(url, {
          headers: have > 0 ? { range: `bytes=${have}-` } : {},
          redirect: 'follow',
          dispatcher,
        }).catch((e: unknown) => {
          throw fail(o.url, describeNetworkFailure(e, url, timeoutMs));
        });
        // 416 with `Content-Range: bytes */N`: the range starts at the end, the `.part` is whole
        // (left by an earlier run that stopped after the last byte).
        const whole = res.headers.get('content-range')?.match(/^bytes \*\/(\d+)$/);
        if (res.status === 416 && have > 0 && have === (total ?? (whole ? Number(whole[1]) : undefined))) {
          total = have;
          await res.body?.cancel(); // already complete
        } else {
          if (res.status !== 200 && res.status !== 206) {
            await res.body?.cancel();
            throw fail(o.url, describeHttpStatus(res.status, new URL(res.url || o.url)));
          }
          const append = res.status === 206 && have > 0;
          if (append) resumed = true;
          const range = (res.headers.get('content-range') ?? '').match(/\/(\d+)$/);
          const length = Number(res.headers.get('content-length') ?? Number.NaN);
          total = range ? Number(range[1]) : Number.isFinite(length) ? length + (append ? have : 0) : total;
          expectedMd5 = googMd5(res.headers.get('x-goog-hash') ?? undefined) ?? expectedMd5;
          // A 206 carries the hash of the whole object too; a partial response's own hash would differ.
          const fh = await open(part, append ? 'a' : 'w');
          let received = append ? have : 0;
          const started = Date.now();
          let lastReport = 0;
          try {
            for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
              await fh.write(chunk);
              received += chunk.length;
              const now = Date.now();
              if (now - lastReport > 200) {
                lastReport = now;
                o.onProgress?.({
                  received,
                  total,
                  bytesPerSecond: ((received - (append ? have : 0)) * 1000) / Math.max(1, now - started),
                });
              }
            }
          } catch (e) {
            throw fail(o.url, describeNetworkFailure(e, url, timeoutMs));
          } finally {
            await fh.close();
          }
          o.onProgress?.({ received, total, bytesPerSecond: 0 });
        }
        const size = (await stat(part)).size;
        if (total !== undefined && size !== total)
          throw new DownloadError(o.url, `got ${size} bytes of ${total}`, true);
        const sha = createHash('sha256');
        const md5 = createHash('md5');
        await hashFile(part, sha, md5);
        const shaHex = sha.digest('hex');
        const md5Hex = md5.digest('hex');
        if (expectedMd5 && md5Hex !== expectedMd5) {
          await rm(part, { force: true });
          throw new DownloadError(
            o.url,
            `MD5 ${md5Hex} does not match the server's ${expectedMd5}; the partial file was removed`,
          );
        }
        if (o.sha256 && shaHex !== o.sha256) {
          await rm(part, { force: true });
          throw new DownloadError(o.url, `sha256 ${shaHex} does not match the expected ${o.sha256}`);
        }
        await rename(part, o.dest);
        return { bytes: size, sha256: shaHex, md5: md5Hex, resumed };
      } catch (e) {
        const err = e instanceof DownloadError ? e : new DownloadError(o.url, (e as Error).message);
        if (!err.transient || attempt >= retries) throw err;
        const delayMs = (o.backoffMs ?? 1000) * 2 ** attempt;
        o.onRetry?.({
          attempt: attempt + 1,
          of: retries + 1,
          reason: err.reason,
          resumeAt: await fileSize(part),
          delayMs,
        });
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  } finally {
    await agent.close();
  }
}
