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
  const key = apiKey.get();
  if (key) headers.authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) body = form;
  let res;
  try {
    res = await fetch(path, { method: method ?? (body === undefined ? 'GET' : 'POST'), headers, body, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', `the service cannot be reached (${e.message})`);
  }
  const text = await res.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  if (!res.ok) {
    const err = answer?.error;
    throw new ApiError(
      res.status,
      err?.code ?? 'http_error',
      err?.message ?? (text.slice(0, 200) || res.statusText),
      err?.index,
    );
  }
  return answer;
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
