// Why a download failed, in words. Node's fetch (undici) reports every network failure as the same
// TypeError "fetch failed" and keeps the reason in `cause`: a system error (ENOTFOUND, ECONNREFUSED,
// a TLS code), an undici error (a timeout, a closed socket), or an AggregateError of one error per
// address tried. This finds the code there and says what it means and whether a retry can help.

import { STATUS_CODES } from 'node:http';

export interface FailureReason {
  /** One clause, e.g. "the DNS lookup of example.com found no such host (ENOTFOUND)". */
  reason: string;
  /** Worth retrying (a dropped connection, a timeout, a 5xx) or not (no such host, nothing listening, a certificate). */
  transient: boolean;
}

interface CodedError extends Error {
  code?: string;
  /** OpenSSL's short text ("wrong version number"), where the message is its whole error stack. */
  reason?: string;
  errors?: unknown[];
}

/** The innermost error with a code along `cause` links and AggregateError members, else the innermost error. */
function rootCause(e: unknown): CodedError {
  let found: CodedError | undefined;
  const seen = new Set<unknown>();
  const walk = (x: unknown): void => {
    if (!(x instanceof Error) || seen.has(x)) return;
    seen.add(x);
    const c = x as CodedError;
    if (typeof c.code === 'string' && !c.code.startsWith('ERR_INVALID')) found = c;
    if (Array.isArray(c.errors)) walk(c.errors[0]);
    walk(c.cause);
  };
  walk(e);
  if (found) return found;
  let last = e as CodedError;
  while (last?.cause instanceof Error) last = last.cause;
  return last;
}

const TLS_CODE = /^(ERR_SSL_|ERR_TLS_)|CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/** What a network error from fetch (or from reading its body) means for a download from `url`. */
export function describeNetworkFailure(e: unknown, url: URL, timeoutMs: number): FailureReason {
  const root = rootCause(e);
  const code = root?.code;
  const host = url.hostname;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const s = `${timeoutMs / 1000} s`;
  switch (code) {
    case 'ENOTFOUND':
      return { reason: `the DNS lookup of ${host} found no such host (ENOTFOUND)`, transient: false };
    case 'EAI_AGAIN':
      return {
        reason: `the DNS lookup of ${host} got no answer (EAI_AGAIN: is this machine offline?)`,
        transient: false,
      };
    case 'ECONNREFUSED':
      return {
        reason: `${host} port ${port} refused the connection (ECONNREFUSED: nothing listens there)`,
        transient: false,
      };
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return { reason: `there is no network route to ${host} (${code})`, transient: false };
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return { reason: `connecting to ${host} port ${port} timed out (${code})`, transient: true };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { reason: `${host} accepted the connection but sent no response within ${s} (${code})`, transient: true };
    case 'UND_ERR_BODY_TIMEOUT':
      return { reason: `the transfer from ${host} stalled for ${s} (${code})`, transient: true };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return { reason: `the connection to ${host} was closed mid-transfer (${code})`, transient: true };
  }
  if (code && TLS_CODE.test(code)) {
    const why = root.reason ?? root.message.trim();
    return {
      reason: `the TLS handshake with ${host} failed: ${why} (${code}; a proxy that intercepts TLS, or not an https server?)`,
      transient: false,
    };
  }
  const message = root?.message || String(e);
  if (message === 'bad port')
    return { reason: `fetch never connects to port ${port} (a blocked port in the fetch standard)`, transient: false };
  return { reason: code ? `${message} (${code})` : message, transient: true };
}

/** An HTTP status other than 200/206. 4xx will not change on a retry (except 408 and 429). */
export function describeHttpStatus(status: number, url: URL): FailureReason {
  const text = STATUS_CODES[status];
  return {
    reason: `${url.host} answered HTTP ${status}${text ? ` ${text}` : ''}`,
    transient: status >= 500 || status === 408 || status === 429,
  };
}
