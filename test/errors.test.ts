import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, errorBody, ERRORS } from '../src/errors.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';

describe('the error catalogue', () => {
  it('gives every code an HTTP error status and a message', () => {
    for (const [code, { status, message }] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
      expect(message.length).toBeGreaterThan(0);
    }
  });

  it('AppError carries the status and default message of its code', () => {
    const error = new AppError('EMAIL_TAKEN');
    expect(error.statusCode).toBe(409);
    expect(error.message).toBe(ERRORS.EMAIL_TAKEN.message);
    expect(new AppError('NOT_FOUND', 'No such card', { id: 1 })).toMatchObject({
      statusCode: 404,
      message: 'No such card',
      details: { id: 1 },
    });
  });

  it('errorBody omits absent details', () => {
    expect(errorBody('NOT_FOUND', 'Not found')).toEqual({ error: { code: 'NOT_FOUND', message: 'Not found' } });
    expect(errorBody('X', 'y', [1])).toEqual({ error: { code: 'X', message: 'y', details: [1] } });
  });
});

describe('error responses', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t.close());

  const postRaw = (url: string, payload: string, contentType = 'application/json') =>
    t.app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });

  it('malformed JSON → 400 INVALID_JSON', async () => {
    for (const payload of ['{"email": ', '{bad json}', "{'a': 1}"]) {
      const res = await postRaw('/auth/register', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: { code: 'INVALID_JSON', message: expect.any(String) } });
    }
  });

  it('a body over 64 KiB → 413 PAYLOAD_TOO_LARGE', async () => {
    const payload = JSON.stringify({ email: 'big@example.com', username: 'big', password: 'x'.repeat(65 * 1024) });
    const res = await postRaw('/auth/register', payload);
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a non-JSON content type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await postRaw('/auth/login', 'login=a&password=b', type);
      expect(res.statusCode).toBe(415);
      expect(res.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('a malformed percent-encoding or an over-long path parameter → 400 with the error shape (found by fuzzing)', async () => {
    for (const url of ['/api/u/%ff', '/api/u/%E0%A4%A', `/api/u/card/${'x'.repeat(101)}`]) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toEqual({ error: { code: 'VALIDATION_ERROR', message: expect.any(String) } });
    }
  });

  it('an unknown route → 404 with the error shape', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['POST', '/api/nope'],
      ['DELETE', '/api/cards'],
    ] as const) {
      const res = await t.app.inject({ method, url });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('ROUTE_NOT_FOUND');
    }
  });

  it('JSON of the wrong shape → 400 VALIDATION_ERROR, never a 5xx', async () => {
    for (const payload of ['null', '[]', '42', '"text"', '{"email": null, "username": 1, "password": {}}', '{"__proto__": {"x": 1}}']) {
      for (const url of ['/auth/register', '/auth/login']) {
        const res = await postRaw(url, payload);
        expect(res.statusCode, `${url} ${payload}`).toBe(400);
        expect(['VALIDATION_ERROR', 'INVALID_JSON']).toContain(res.json().error.code);
      }
    }
  });

  it('NUL characters or unpaired surrogates anywhere in the input → 400 VALIDATION_ERROR, never a 5xx, nothing stored', async () => {
    const register = (body: Record<string, string>) => t.app.inject({ method: 'POST', url: '/auth/register', payload: body });
    const valid = { email: 'nul@example.com', username: 'nul_user', password: 'correct horse battery' };
    for (const body of [
      { ...valid, displayName: 'Ada\u0000' },
      { ...valid, password: 'correct horse\u0000battery' },
      { ...valid, ['dis\u0000play']: 'x' },
      { ...valid, displayName: 'Ada \ud800' },
    ]) {
      const res = await register(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
    }
    const nested = await postRaw('/auth/login', JSON.stringify({ login: 'a', password: 'b', deep: [[[{ x: 'y\u0000' }]]] }));
    expect(nested.statusCode).toBe(400);
    for (const url of ['/api/u/a%00b', '/api/u/ada?source=qr%00']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
    }
    expect(await t.db.prisma.user.count({ where: { email: valid.email } })).toBe(0);
  });

  it('validation errors list each field with a message', async () => {
    const res = await postRaw('/auth/register', JSON.stringify({ email: 'nope', username: 'x', password: 'short' }));
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('VALIDATION_ERROR');
    expect(error.details).toEqual(
      expect.arrayContaining([
        { field: 'body.email', message: expect.any(String) },
        { field: 'body.username', message: expect.any(String) },
        { field: 'body.password', message: 'must be at least 8 characters' },
      ]),
    );
  });
});

describe('rate limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_AUTH_PER_MINUTE: '3', RATE_LIMIT_PUBLIC_PER_MINUTE: '2' } });
  });
  afterAll(async () => t.close());

  it('auth routes answer 429 RATE_LIMITED past the limit', async () => {
    const login = () => t.app.inject({ method: 'POST', url: '/auth/login', payload: { login: 'nobody', password: 'whatever1' } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await login()).statusCode);
    expect(statuses).toEqual([401, 401, 401]);
    const limited = await login();
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringMatching(/retry in \d+ s/) } });
    expect(limited.headers['retry-after']).toBeDefined();
  });

  it('public routes answer 429 RATE_LIMITED past their own limit', async () => {
    const view = () => t.app.inject({ method: 'GET', url: '/api/u/nobody_here' });
    expect((await view()).statusCode).toBe(404);
    expect((await view()).statusCode).toBe(404);
    const limited = await view();
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
  });
});
