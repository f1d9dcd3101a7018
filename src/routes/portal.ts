import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** Where the portal lives: `/portal` is its page, `/portal/<file>` its stylesheet and modules. */
export const PORTAL_PATH = '/portal';

/** Plain HTML, CSS, ES modules and an SVG icon, served as they are: no build step, nothing from elsewhere. */
export const PORTAL_DIR = fileURLToPath(new URL('../portal/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The portal's Content-Security-Policy. app.ts registers helmet with CSP off because the OpenAPI
 * UI at /docs needs inline scripts and styles; the portal needs none, so its responses carry a
 * strict policy of their own rather than a weaker one for every route: files from this origin
 * only, API calls to this origin only, no forms posted anywhere (the script sends them), no
 * framing, and Trusted Types, under which the browser refuses any HTML string written into the
 * page (innerHTML and the like): API data can only ever become text.
 */
const PORTAL_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'"],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
    requireTrustedTypesFor: ["'script'"],
    trustedTypes: ["'none'"],
  },
};

interface PortalFile {
  url: string;
  body: Buffer;
  contentType: string;
  etag: string;
}

/** Read once at start-up: a missing or unreadable file is a start-up error, and no request touches the disk. */
function loadPortalFiles(): PortalFile[] {
  return readdirSync(PORTAL_DIR)
    .filter((name) => CONTENT_TYPES[path.extname(name)] !== undefined)
    .map((name) => {
      const body = readFileSync(path.join(PORTAL_DIR, name));
      return {
        url: name === 'index.html' ? PORTAL_PATH : `${PORTAL_PATH}/${name}`,
        body,
        contentType: CONTENT_TYPES[path.extname(name)]!,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      };
    });
}

/**
 * The portal (issue 7): a page that manages the signed-in user's endpoints through the same JSON
 * API as every other client. A handful of files, so they are kept in memory and each gets its own
 * route (one fixed URL per file, no path from the request reaches the file system) rather than
 * a static-file server. Not API operations, so hidden from OpenAPI; rate limited per address like
 * the other anonymous routes.
 */
export async function portalRoutes(app: FastifyInstance): Promise<void> {
  const config = { rateLimit: { max: app.config.rateLimits.publicPerMinute, timeWindow: '1 minute' } };
  for (const file of loadPortalFiles()) {
    app.get(file.url, { config, helmet: { contentSecurityPolicy: PORTAL_CSP }, schema: { hide: true } }, async (request, reply) => {
      // Revalidated on every load (a new version shows at once), answered 304 when unchanged.
      void reply.header('cache-control', 'no-cache').header('etag', file.etag).type(file.contentType);
      if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
      return reply.send(file.body);
    });
  }
}
