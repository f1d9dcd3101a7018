import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PORTAL_DIR } from '../../src/routes/portal.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/** How the portal is served; what it does in a browser is test/portal/portal.e2e.test.ts. */

/** The URLs index.html loads and, from each module, the modules it imports: the page's whole graph. */
function portalUrls(): string[] {
  const html = readFileSync(path.join(PORTAL_DIR, 'index.html'), 'utf8');
  const urls = new Set([...html.matchAll(/(?:href|src)="(\/portal\/[^"]+)"/g)].map((match) => match[1]!));
  const pending = [...urls].filter((url) => url.endsWith('.js'));
  while (pending.length > 0) {
    const url = pending.pop()!;
    const source = readFileSync(path.join(PORTAL_DIR, path.basename(url)), 'utf8');
    for (const [, relative] of source.matchAll(/^import [^;]*? from '(\.\/[^']+)';$/gm)) {
      const imported = new URL(relative!, `http://portal${url}`).pathname;
      if (!urls.has(imported)) pending.push(imported);
      urls.add(imported);
    }
  }
  return [...urls];
}

describe('the portal is served at /portal', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { WEBHOOK_WORKER: 'off' } });
  });
  afterAll(async () => t.close());

  it('serves the page as HTML under a strict Content-Security-Policy with Trusted Types', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/portal' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toMatch(/^<!doctype html>/);
    const csp = String(res.headers['content-security-policy']);
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "require-trusted-types-for 'script'",
      "trusted-types 'none'",
    ]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toContain('unsafe');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves every stylesheet, module and icon the page loads, with its type', async () => {
    const urls = portalUrls();
    expect(urls).toContain('/portal/main.js');
    expect(urls).toContain('/portal/portal.css');
    expect(urls).toContain('/portal/favicon.svg');
    for (const url of urls) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      const type = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml' }[
        path.extname(url)
      ];
      expect(res.headers['content-type'], url).toBe(type);
      expect(res.headers['content-security-policy'], url).toContain("default-src 'none'");
    }
  });

  it('answers 304 to a revalidation of an unchanged file', async () => {
    const first = await t.app.inject({ method: 'GET', url: '/portal/main.js' });
    expect(first.headers['cache-control']).toBe('no-cache');
    const again = await t.app.inject({ method: 'GET', url: '/portal/main.js', headers: { 'if-none-match': String(first.headers.etag) } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('serves nothing but its own files', async () => {
    for (const url of ['/portal/../package.json', '/portal/%2e%2e/package.json', '/portal/nope.js', '/portal/', '/portal/index.html']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
    }
  });

  it('leaves the policy of the other routes alone (the OpenAPI UI needs inline scripts)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.headers['content-security-policy']).toBeUndefined();
  });

  it('never writes HTML from script: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval', () => {
    const modules = readdirSync(PORTAL_DIR).filter((name) => name.endsWith('.js'));
    expect(modules.length).toBeGreaterThan(3);
    for (const name of modules) {
      // Code only: the comments may name what the code avoids.
      const source = readFileSync(path.join(PORTAL_DIR, name), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      expect(source, name).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|srcdoc/);
    }
  });

  it('fills elements only through dom.js, since the DOM writes a skipped (null) child as the text "null"', () => {
    for (const name of readdirSync(PORTAL_DIR).filter((file) => file.endsWith('.js') && file !== 'dom.js')) {
      const source = readFileSync(path.join(PORTAL_DIR, name), 'utf8');
      expect(source, name).not.toMatch(/\.(replaceChildren|append|prepend)\(/);
    }
  });
});
