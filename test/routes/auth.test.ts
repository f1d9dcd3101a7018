import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyDummyPassword, verifyPassword } from '../../src/services/passwords.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

const PASSWORD = 'correct horse battery';

describe('password hashing', () => {
  it('verifies the right password only, with a fresh salt per hash', async () => {
    const [a, b] = await Promise.all([hashPassword(PASSWORD), hashPassword(PASSWORD)]);
    expect(a).not.toBe(b);
    expect(a.split('$').slice(0, 4)).toEqual(['scrypt', '16384', '8', '1']);
    expect(Buffer.from(a.split('$')[4]!, 'base64')).toHaveLength(16);
    expect(await verifyPassword(PASSWORD, a)).toBe(true);
    expect(await verifyPassword(PASSWORD, b)).toBe(true);
    expect(await verifyPassword(`${PASSWORD}!`, a)).toBe(false);
    expect(await verifyDummyPassword(PASSWORD)).toBe(false);
  });

  it('treats malformed or hostile stored hashes as a mismatch, never an exception', async () => {
    const good = await hashPassword(PASSWORD);
    const [, , , , salt, hash] = good.split('$');
    for (const stored of [
      '',
      'plain',
      `bcrypt$16384$8$1$${salt}$${hash}`,
      `scrypt$1000$8$1$${salt}$${hash}`,
      `scrypt$1073741824$8$1$${salt}$${hash}`,
      `scrypt$16384$8$1$$${hash}`,
      `scrypt$16384$8$1$${salt}$`,
    ]) {
      expect(await verifyPassword(PASSWORD, stored), stored).toBe(false);
    }
  });
});

describe('auth routes', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t.close());

  const register = (body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/auth/register', payload: body });
  const login = (body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/auth/login', payload: body });

  describe('POST /auth/register', () => {
    it('creates the account and returns the public user and a working token', async () => {
      const res = await register({ email: '  Ada@Example.COM ', username: 'Ada_L', password: PASSWORD, displayName: 'Ada Lovelace' });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(Object.keys(body.user).sort()).toEqual(['createdAt', 'displayName', 'email', 'id', 'username']);
      expect(body.user).toMatchObject({ email: 'ada@example.com', username: 'ada_l', displayName: 'Ada Lovelace' });
      expect(typeof body.token).toBe('string');

      const cards = await t.app.inject({ method: 'GET', url: '/api/cards', headers: { authorization: `Bearer ${body.token}` } });
      expect(cards.statusCode).toBe(200);
    });

    it('defaults displayName to the username', async () => {
      const res = await register({ email: 'grace@example.com', username: 'grace', password: PASSWORD });
      expect(res.statusCode).toBe(201);
      expect(res.json().user.displayName).toBe('grace');
    });

    it('stores a salted scrypt hash, never the password', async () => {
      await register({ email: 'salt1@example.com', username: 'salt1', password: PASSWORD });
      await register({ email: 'salt2@example.com', username: 'salt2', password: PASSWORD });
      const rows = await t.db.prisma.user.findMany({ where: { username: { in: ['salt1', 'salt2'] } } });
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(row.passwordHash).not.toContain(PASSWORD);
        expect(row.passwordHash).toMatch(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
      }
      expect(rows[0]!.passwordHash).not.toBe(rows[1]!.passwordHash);
    });

    it('rejects a taken email, whatever its case, with 409 EMAIL_TAKEN', async () => {
      await register({ email: 'dup@example.com', username: 'dup_one', password: PASSWORD });
      for (const email of ['dup@example.com', 'DUP@Example.com']) {
        const res = await register({ email, username: 'dup_two', password: PASSWORD });
        expect(res.statusCode).toBe(409);
        expect(res.json().error.code).toBe('EMAIL_TAKEN');
      }
    });

    it('rejects a taken username, whatever its case, with 409 USERNAME_TAKEN', async () => {
      await register({ email: 'u1@example.com', username: 'taken', password: PASSWORD });
      for (const username of ['taken', 'TAKEN', 'Taken']) {
        const res = await register({ email: 'u2@example.com', username, password: PASSWORD });
        expect(res.statusCode).toBe(409);
        expect(res.json().error.code).toBe('USERNAME_TAKEN');
      }
    });

    it('lets exactly one of concurrent duplicate registrations through', async () => {
      const attempts = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          register({ email: i % 2 ? 'race@example.com' : 'RACE@example.com', username: `racer_${i}`, password: PASSWORD }),
        ),
      );
      const statuses = attempts.map((r) => r.statusCode).sort();
      expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
      for (const r of attempts.filter((a) => a.statusCode === 409)) expect(r.json().error.code).toBe('EMAIL_TAKEN');

      const sameName = await Promise.all(
        Array.from({ length: 8 }, (_, i) => register({ email: `same${i}@example.com`, username: 'same_name', password: PASSWORD })),
      );
      expect(sameName.filter((r) => r.statusCode === 201)).toHaveLength(1);
      for (const r of sameName.filter((a) => a.statusCode !== 201)) {
        expect(r.statusCode).toBe(409);
        expect(r.json().error.code).toBe('USERNAME_TAKEN');
      }
      expect(await t.db.prisma.user.count({ where: { username: 'same_name' } })).toBe(1);
    });

    it.each([
      ['missing fields', {}, ['email', 'username', 'password']],
      ['weak password', { email: 'weak@example.com', username: 'weak', password: 'short' }, ['password']],
      ['too long password', { email: 'long@example.com', username: 'longpw', password: 'x'.repeat(129) }, ['password']],
      ['bad email', { email: 'not-an-email', username: 'bademail', password: PASSWORD }, ['email']],
      ['bad username', { email: 'bn@example.com', username: 'no spaces!', password: PASSWORD }, ['username']],
      ['short username', { email: 'sn@example.com', username: 'ab', password: PASSWORD }, ['username']],
      ['empty displayName', { email: 'dn@example.com', username: 'dname', password: PASSWORD, displayName: ' ' }, ['displayName']],
      ['unknown field', { email: 'uf@example.com', username: 'unknownf', password: PASSWORD, isAdmin: true }, []],
    ])('rejects %s with 400 VALIDATION_ERROR and details', async (_name, body, fields) => {
      const res = await register(body);
      expect(res.statusCode).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe('VALIDATION_ERROR');
      expect(error.message).toEqual(expect.any(String));
      expect(Array.isArray(error.details)).toBe(true);
      expect(error.details.length).toBeGreaterThan(0);
      const reported = error.details.map((d: { field: string }) => d.field).join(' ');
      for (const field of fields) expect(reported).toContain(field);
      if (fields.length === 0) expect(JSON.stringify(error)).toContain('isAdmin');
    });
  });

  describe('POST /auth/login', () => {
    beforeAll(async () => {
      const res = await register({ email: 'login@example.com', username: 'loginuser', password: PASSWORD });
      expect(res.statusCode).toBe(201);
    });

    it.each(['login@example.com', 'LOGIN@example.com', 'loginuser', 'LoginUser'])('logs in with %s', async (name) => {
      const res = await login({ login: name, password: PASSWORD });
      expect(res.statusCode).toBe(200);
      expect(res.json().user).toMatchObject({ username: 'loginuser', email: 'login@example.com' });
      expect(res.json().user).not.toHaveProperty('passwordHash');
      const me = await t.app.inject({ method: 'GET', url: '/api/cards', headers: { authorization: `Bearer ${res.json().token}` } });
      expect(me.statusCode).toBe(200);
    });

    it('rejects a wrong password and an unknown login alike with 401 INVALID_CREDENTIALS', async () => {
      const wrong = await login({ login: 'loginuser', password: 'wrong password' });
      const unknownName = await login({ login: 'nobody', password: PASSWORD });
      const unknownEmail = await login({ login: 'nobody@example.com', password: PASSWORD });
      for (const res of [wrong, unknownName, unknownEmail]) {
        expect(res.statusCode).toBe(401);
        expect(res.json()).toEqual({ error: { code: 'INVALID_CREDENTIALS', message: 'Wrong login or password' } });
      }
    });

    it('validates the body', async () => {
      for (const body of [{}, { login: 'loginuser' }, { login: 'loginuser', password: PASSWORD, extra: 1 }]) {
        const res = await login(body);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.code).toBe('VALIDATION_ERROR');
        expect(res.json().error.details.length).toBeGreaterThan(0);
      }
    });
  });

  describe('bearer tokens on /api/cards', () => {
    it('requires a token: 401 UNAUTHORIZED', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/cards' });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    });

    it.each(['Bearer not-a-jwt', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl', 'Basic dXNlcjpwYXNz'])(
      'rejects %s with 401 INVALID_TOKEN',
      async (authorization) => {
        const res = await t.app.inject({ method: 'GET', url: '/api/cards', headers: { authorization } });
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('INVALID_TOKEN');
      },
    );

    it('rejects a token signed with another secret', async () => {
      const other = await buildTestApp({ env: { JWT_SECRET: 'another-secret-that-is-long-enough-9876543210' } });
      try {
        const res = await other.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: 'x@example.com', username: 'xuser', password: PASSWORD },
        });
        const token = res.json().token as string;
        const denied = await t.app.inject({ method: 'GET', url: '/api/cards', headers: { authorization: `Bearer ${token}` } });
        expect(denied.statusCode).toBe(401);
        expect(denied.json().error.code).toBe('INVALID_TOKEN');
      } finally {
        await other.close();
      }
    });

    it('rejects a correctly signed token whose subject is not a user id (found by fuzzing: it was a 500)', async () => {
      for (const claims of [{ sub: 'not-a-uuid', username: 'x' }, { sub: 42, username: 'x' }, { username: 'x' }]) {
        const token = t.app.jwt.sign(claims as unknown as { sub: string; username: string });
        for (const [method, url] of [
          ['GET', '/api/cards'],
          ['DELETE', `/api/webhooks/${randomUUID()}`],
        ] as const) {
          const res = await t.app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
          expect(res.statusCode, `${JSON.stringify(claims)} ${method} ${url}`).toBe(401);
          expect(res.json().error.code).toBe('INVALID_TOKEN');
        }
      }
    });
  });

  it('documents the routes in OpenAPI', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const paths = res.json().paths;
    for (const path of [
      '/auth/register',
      '/auth/login',
      '/api/cards',
      '/api/cards/{id}/save',
      '/api/u/{username}',
      '/api/u/card/{cardId}',
      '/api/u/{username}/card/{cardId}',
    ]) {
      expect(paths).toHaveProperty([path]);
    }
    expect(paths['/api/cards'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(JSON.stringify(res.json())).not.toContain('passwordHash');
  });
});
