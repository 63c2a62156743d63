// GET / and /ui/*: the web page that searches and classifies the user's own images, and searches the
// store's collections, through the API (assets/ui/). The files are read once at start and served from
// memory with an ETag, revalidated on each load (their names carry no hash), under a
// Content-Security-Policy that lets the page run only its own scripts and styles and talk only to
// this service. The routes are open (no API key: the page asks for one) and hidden from the OpenAPI
// document. A handful of small files known at start need no @fastify/static: it would read them from
// disk per request and map paths this page does not have.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { ASSETS_DIR } from '../../core/paths.js';

export const UI_DIR = join(ASSETS_DIR, 'ui');

/**
 * Scripts, styles, fonts and frames only from this origin (no inline code, no eval); API calls only to
 * it. Images also from blob: (the user's files), data: and http(s): an image URL the user pastes is
 * shown as the service fetches it.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data: http: https:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function load(file: string): Asset {
  const body = readFileSync(join(UI_DIR, file));
  const type = TYPES[extname(file)];
  if (!type) throw new Error(`assets/ui/${file}: no content type for ${extname(file) || 'a file without extension'}`);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

export const uiRoutes: FastifyPluginAsync = async (app) => {
  const files = readdirSync(UI_DIR).filter((f) => f !== 'index.html' && !f.startsWith('.'));
  const routes: [string, Asset][] = [
    ['/', load('index.html')],
    ...files.map((f): [string, Asset] => [`/ui/${f}`, load(f)]),
  ];
  for (const [path, asset] of routes) {
    app.get(path, { schema: { hide: true }, config: { openRoute: true } }, async (req, reply) => {
      void reply
        .header('content-type', asset.type)
        .header('cache-control', 'no-cache')
        .header('etag', asset.etag)
        .header('content-security-policy', UI_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer');
      if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
      return asset.body;
    });
  }
};
