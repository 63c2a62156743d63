// The service's HTTP API as the page uses it: the API key (this tab only), errors as the API words
// them, and vectors decoded from base64.

const KEY = 'albef-embed.api-key';

/** An error answer of the API: its status, code and message, and the item it names, if any. */
export class ApiError extends Error {
  constructor(status, code, message, index) {
    super(message);
    this.status = status;
    this.code = code;
    this.index = index;
  }

  /** As shown to the user: "422 undecodable_image: item 0: …". */
  get text() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(KEY) ?? '',
  set: (k) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

/** fetch with the API key; resolves to the JSON answer or throws ApiError. */
export async function call(path, { json, form, signal, method } = {}) {
  const headers = {};
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) body = form;
  const res = await send(path, { method: method ?? (body === undefined ? 'GET' : 'POST'), headers, body, signal });
  const text = await res.text();
  const answer = parse(text);
  if (!res.ok) throw apiError(res, answer, text);
  return answer;
}

/**
 * GET a picture with the API key (an <img> cannot send the Authorization header): resolves to a Blob
 * or throws ApiError. Same origin only: the page's CSP lets fetch reach nothing else.
 */
export async function fetchBlob(path, { signal } = {}) {
  const res = await send(path, { headers: {}, signal });
  if (res.ok) return res.blob();
  const text = await res.text();
  throw apiError(res, parse(text), text);
}

async function send(path, init) {
  const key = apiKey.get();
  if (key) init.headers.authorization = `Bearer ${key}`;
  try {
    return await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', `the service cannot be reached (${e.message})`);
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function apiError(res, answer, text) {
  const err = answer?.error;
  return new ApiError(
    res.status,
    err?.code ?? 'http_error',
    err?.message ?? (text.slice(0, 200) || res.statusText),
    err?.index,
  );
}

/** A base64 little-endian float32 vector. */
export function decodeVector(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}
