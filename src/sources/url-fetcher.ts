// Fetches images by URL under an SSRF guard: http/https only; every hop's host is resolved and each
// resolved address checked before any connection is made (IP literals directly, names through the
// agent's DNS lookup), redirects followed by hand so each target is checked again; connect and total
// timeouts; a byte cap enforced while streaming.

import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { BadRequestError, PayloadTooLargeError, UpstreamFetchError } from '../core/errors.js';
import { unpausedResponses } from '../core/unpaused-responses.js';
import { isForbiddenAddress } from './address-policy.js';

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export interface UrlFetchOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  /** DNS resolution (injectable for tests); defaults to the system resolver. */
  resolver?: Resolver;
  /** Address policy (injectable for tests, which must treat one loopback address as public). */
  isForbidden?: (address: string) => boolean;
  /** Called with each address the fetcher is about to connect to (tests and logs). */
  onConnect?: (address: string, hostname: string) => void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_URL_LENGTH = 8192;

class ForbiddenAddressError extends BadRequestError {
  constructor(
    readonly host: string,
    readonly address: string,
    index?: number,
  ) {
    super(
      `item ${index ?? 0}: image URL host ${host} resolves to ${address}, a private or reserved address (start with --allow-private-urls to permit)`,
      index,
      'url_not_allowed',
    );
  }
}

export class UrlFetcher {
  private readonly agent: Agent;
  private readonly resolver: Resolver;
  private readonly forbidden: (address: string) => boolean;

  constructor(private readonly options: UrlFetchOptions) {
    this.resolver = options.resolver ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
    this.forbidden = options.allowPrivate ? () => false : (options.isForbidden ?? isForbiddenAddress);
    this.agent = new Agent({
      connect: {
        timeout: Math.min(options.timeoutMs, 5000),
        lookup: (hostname, opts, callback) => {
          this.resolveChecked(hostname).then(
            (addrs) => {
              const a = addrs[0]!;
              options.onConnect?.(a.address, hostname);
              if ((opts as { all?: boolean }).all) callback(null, addrs);
              else callback(null, a.address, a.family);
            },
            (e: Error) => callback(e as NodeJS.ErrnoException, '', 0),
          );
        },
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      maxResponseSize: options.maxBytes + 1,
    });
  }

  /** Resolved addresses of a host name, refusing the lot if any one is forbidden. */
  private async resolveChecked(hostname: string, index?: number): Promise<LookupAddress[]> {
    let addrs: LookupAddress[];
    try {
      addrs = await this.resolver(hostname);
    } catch (e) {
      throw new UpstreamFetchError(`item ${index ?? 0}: cannot resolve ${hostname}: ${(e as Error).message}`, index);
    }
    if (addrs.length === 0) throw new UpstreamFetchError(`item ${index ?? 0}: ${hostname} has no addresses`, index);
    const bad = addrs.find((a) => this.forbidden(a.address));
    if (bad) throw new ForbiddenAddressError(hostname, bad.address, index);
    return addrs;
  }

  private checkUrl(raw: string, index?: number): URL {
    if (raw.length > MAX_URL_LENGTH)
      throw new BadRequestError(
        `item ${index ?? 0}: URL longer than ${MAX_URL_LENGTH} characters`,
        index,
        'invalid_url',
      );
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new BadRequestError(`item ${index ?? 0}: not a valid URL`, index, 'invalid_url');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BadRequestError(
        `item ${index ?? 0}: only http and https image URLs are fetched, not ${url.protocol}`,
        index,
        'url_not_allowed',
      );
    }
    if (url.username || url.password)
      throw new BadRequestError(`item ${index ?? 0}: URLs with credentials are refused`, index, 'url_not_allowed');
    // The WHATWG parser has already normalised decimal/octal/hex IPv4 spellings to dotted quads.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && this.forbidden(host)) throw new ForbiddenAddressError(host, host, index);
    return url;
  }

  /** The body of `rawUrl` (after redirects), at most maxBytes. */
  async fetch(rawUrl: string, index?: number, signal?: AbortSignal): Promise<Uint8Array> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    const abort = signal ? AbortSignal.any([deadline, signal]) : deadline;
    let url = this.checkUrl(rawUrl, index);
    for (let hop = 0; ; hop++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: 'GET',
          // No paused parser for a server's FIN to crash (see unpaused-responses.ts).
          dispatcher: this.agent.compose(unpausedResponses()),
          signal: abort,
          headers: { 'user-agent': 'albef-embed', accept: 'image/*' },
        });
      } catch (e) {
        throw this.wrap(e, url, index, deadline);
      }
      if (REDIRECTS.has(res.statusCode)) {
        res.body.resume();
        const location = res.headers.location;
        if (typeof location !== 'string')
          throw new UpstreamFetchError(`item ${index ?? 0}: redirect without a Location from ${url.host}`, index);
        if (hop >= this.options.maxRedirects)
          throw new UpstreamFetchError(
            `item ${index ?? 0}: more than ${this.options.maxRedirects} redirects`,
            index,
            'url_too_many_redirects',
          );
        url = this.checkUrl(new URL(location, url).href, index);
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        res.body.resume();
        throw new UpstreamFetchError(`item ${index ?? 0}: ${url.host} answered HTTP ${res.statusCode}`, index);
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.options.maxBytes) {
        res.body.destroy();
        throw new PayloadTooLargeError(
          `item ${index ?? 0}: the image at ${url.host} is ${declared} bytes, over the limit of ${this.options.maxBytes}`,
          index,
          'url_too_large',
        );
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > this.options.maxBytes) {
            res.body.destroy();
            throw new PayloadTooLargeError(
              `item ${index ?? 0}: the image at ${url.host} is over the limit of ${this.options.maxBytes} bytes`,
              index,
              'url_too_large',
            );
          }
          chunks.push(chunk as Buffer);
        }
      } catch (e) {
        throw this.wrap(e, url, index, deadline);
      }
      return Buffer.concat(chunks, size);
    }
  }

  private wrap(e: unknown, url: URL, index: number | undefined, deadline: AbortSignal): Error {
    if (e instanceof ForbiddenAddressError && e.index !== index)
      return new ForbiddenAddressError(e.host, e.address, index);
    // A DNS failure in the agent's lookup arrives as itself, raised without the item: name it here.
    if (e instanceof UpstreamFetchError && e.index !== index)
      return new UpstreamFetchError(e.message.replace(/^item \d+/, `item ${index ?? 0}`), index, e.code);
    if (e instanceof BadRequestError || e instanceof PayloadTooLargeError || e instanceof UpstreamFetchError) return e;
    const cause = (e as { cause?: unknown }).cause;
    // Refusals raised inside the agent's DNS lookup do not know the item: name it here.
    if (cause instanceof ForbiddenAddressError) return new ForbiddenAddressError(cause.host, cause.address, index);
    if (cause instanceof UpstreamFetchError)
      return new UpstreamFetchError(cause.message.replace(/^item \d+/, `item ${index ?? 0}`), index, cause.code);
    if (cause instanceof BadRequestError) return cause;
    const code = (e as { code?: string }).code;
    if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
      return new PayloadTooLargeError(
        `item ${index ?? 0}: the image at ${url.host} is over the limit of ${this.options.maxBytes} bytes`,
        index,
        'url_too_large',
      );
    }
    if (
      deadline.aborted ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT'
    ) {
      return new UpstreamFetchError(
        `item ${index ?? 0}: fetching ${url.host} took longer than ${this.options.timeoutMs} ms`,
        index,
        'url_timeout',
      );
    }
    return new UpstreamFetchError(`item ${index ?? 0}: cannot fetch from ${url.host}: ${(e as Error).message}`, index);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
