import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { webhooksPlugin, type WebhooksModuleConfig } from '../../src/webhooks/plugin.ts';
import { testConfig } from '../helpers/app.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The webhooks module mounted in an app that is not this repository's host, shaped like
 * DevCard's backend: its own Fastify instance (no zod type provider, its own error handler),
 * its own sign-in (`Authorization: Token <opaque>`), its own users and cards tables, and only
 * the webhook migrations, applied as an adopter would (docs/adopting.md).
 */

const PREFIX = '/v2/hooks';
const API_PER_MINUTE = 30;

/** The migrations an adopter copies: those that create or change the webhook_* tables. */
async function copyWebhookMigrations(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'webhook-migrations-'));
  for (const name of await readdir(MIGRATIONS_DIR)) {
    const file = path.join(MIGRATIONS_DIR, name, 'migration.sql');
    const sql = await readFile(file, 'utf8').catch(() => '');
    if (/"webhook_/.test(sql)) await cp(path.join(MIGRATIONS_DIR, name), path.join(dir, name), { recursive: true });
  }
  return dir;
}

/** The adopting app's own schema: a users table of another shape (no username), cards and a view log of its own. */
const HOST_SCHEMA = `
  CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    handle text NOT NULL,
    email text,
    plan text NOT NULL DEFAULT 'free'
  );
  CREATE TABLE member_cards (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner uuid NOT NULL REFERENCES users(id),
    headline text NOT NULL
  );
  CREATE TABLE card_view_log (
    id bigserial PRIMARY KEY,
    card_id uuid NOT NULL REFERENCES member_cards(id),
    viewer uuid REFERENCES users(id),
    viewed_at timestamptz NOT NULL DEFAULT now()
  );`;

interface Member {
  id: string;
  handle: string;
  token: string;
}

interface HostApp {
  app: FastifyInstance;
  signUp(handle: string): Promise<Member>;
  createCard(owner: Member): Promise<string>;
}

async function buildHostApp(db: Database, config: WebhooksModuleConfig): Promise<HostApp> {
  const app = Fastify({ logger: false });
  const sessions = new Map<string, Member>();
  const memberOf = (request: FastifyRequest): Member | undefined => {
    const token = /^Token (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    return token === undefined ? undefined : sessions.get(token);
  };

  // The host's own error shape, which the module's routes must not take.
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) =>
    reply.status(error.statusCode ?? 500).send({ failed: error.message }),
  );
  // Fails by throwing, as @fastify/jwt's hooks do: each route scope renders the error its own way.
  app.decorate('requireMember', async (request: FastifyRequest) => {
    const member = memberOf(request);
    if (!member) throw Object.assign(new Error('sign in first'), { statusCode: 401 });
    Object.assign(request, { user: { id: member.id, handle: member.handle } });
  });

  await app.register(webhooksPlugin, { db, config, prefix: PREFIX, authenticate: 'requireMember' });

  // The app's own event source: a view recorded in its own table, and card.viewed in the same transaction.
  app.post('/cards/:id/views', async (request, reply) => {
    const { id } = request.params as { id: string };
    const viewer = memberOf(request);
    const recorded = await app.webhooks.withEvents(async ({ sql, dispatch }) => {
      const [card] = await sql.query<{ owner: string }>('SELECT owner FROM member_cards WHERE id = $1::uuid', [id]);
      if (!card) return false;
      await sql.query('INSERT INTO card_view_log (card_id, viewer) VALUES ($1::uuid, $2::uuid)', [id, viewer?.id ?? null]);
      await dispatch(card.owner, 'card.viewed', {
        userId: card.owner,
        cardId: id,
        viewer: viewer ? { id: viewer.id, username: viewer.handle } : null,
        source: 'qr',
      });
      return true;
    });
    return recorded ? reply.status(201).send({ recorded }) : reply.status(404).send({ failed: 'no such card' });
  });
  await app.ready();

  return {
    app,
    async signUp(handle) {
      const [row] = await db.sql.query<{ id: string }>('INSERT INTO users (handle, plan) VALUES ($1, $2) RETURNING id', [handle, 'pro']);
      const member = { id: row!.id, handle, token: randomBytes(16).toString('hex') };
      sessions.set(member.token, member);
      return member;
    },
    async createCard(owner) {
      const [row] = await db.sql.query<{ id: string }>('INSERT INTO member_cards (owner, headline) VALUES ($1::uuid, $2) RETURNING id', [
        owner.id,
        'Hello',
      ]);
      return row!.id;
    },
  };
}

describe('the webhooks module in another Fastify app', () => {
  let store: TestStore;
  let db: Database;
  let migrations: string;
  let host: HostApp;
  let receiver: Receiver;
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    store = await createTestStore();
    db = await store.open();
    await db.sql.exec(HOST_SCHEMA);
    migrations = await copyWebhookMigrations();
    // One connection for the run: the migration lock is per session.
    await db.transaction((tx) => applyMigrations(tx, migrations));
    const base = testConfig(store);
    host = await buildHostApp(db, {
      webhooks: base.webhooks,
      webhookEncryptionKey: randomBytes(32),
      databaseUrl: base.databaseUrl,
      rateLimits: { apiPerMinute: API_PER_MINUTE },
      metrics: base.metrics,
    });
    // A receiver that verifies as docs/receiving-webhooks.md says: 2xx only for a valid signature.
    receiver = await startReceiver((request, res) => {
      const secret = secrets.get(request.path);
      let verified = false;
      try {
        new Webhook(secret ?? '').verify(request.body, request.headers as Record<string, string>);
        verified = secret !== undefined;
      } catch {
        verified = false;
      }
      res.writeHead(verified ? 204 : 401);
      res.end();
    });
  });

  afterAll(async () => {
    await host?.app.close();
    await receiver?.close();
    await db?.close();
    await store?.drop();
    if (migrations) await rm(migrations, { recursive: true, force: true });
  });

  const asMember = (member: Member | undefined, options: { method: 'GET' | 'POST' | 'PATCH'; url: string; payload?: object }) =>
    host.app.inject({ ...options, headers: member ? { authorization: `Token ${member.token}` } : {} });

  it('creates an endpoint with the app’s own token, delivers the app’s own event signed, and logs it', async () => {
    const owner = await host.signUp('ada');
    const visitor = await host.signUp('grace');
    const cardId = await host.createCard(owner);

    const created = await asMember(owner, {
      method: 'POST',
      url: PREFIX,
      payload: { url: `${receiver.origin}/ada`, events: ['card.viewed'] },
    });
    expect(created.statusCode).toBe(201);
    const endpoint = created.json<{ id: string; secret: string }>();
    secrets.set('/ada', endpoint.secret);

    const viewed = await asMember(visitor, { method: 'POST', url: `/cards/${cardId}/views` });
    expect(viewed.statusCode).toBe(201);
    const views = await db.sql.query<{ viewer: string }>('SELECT viewer FROM card_view_log WHERE card_id = $1::uuid', [cardId]);
    expect(views).toEqual([{ viewer: visitor.id }]);

    const request = await waitFor(() => receiver.at('/ada')[0], { what: 'the delivery' });
    const body = new Webhook(endpoint.secret).verify(request.body, request.headers as Record<string, string>);
    expect(body).toMatchObject({
      type: 'card.viewed',
      data: { userId: owner.id, cardId, viewer: { id: visitor.id, username: 'grace' }, source: 'qr' },
    });

    const delivered = await waitFor(
      async () => {
        const res = await asMember(owner, { method: 'GET', url: `${PREFIX}/${endpoint.id}/deliveries` });
        const page = res.json<{ data: Array<{ status: string; responseCode: number | null; eventType: string }> }>();
        return page.data[0]?.status === 'success' && page.data;
      },
      { what: 'the delivery log to show the success', intervalMs: 200 },
    );
    expect(delivered).toEqual([expect.objectContaining({ eventType: 'card.viewed', status: 'success', responseCode: 204 })]);
  });

  it('answers in the module’s error shape on its routes, the app’s own 401 included, and leaves the app’s routes theirs', async () => {
    const member = await host.signUp('linus');
    for (const authorization of [undefined, 'Bearer a.b.c', 'Token unknown']) {
      const anonymous = await host.app.inject({ method: 'GET', url: PREFIX, headers: authorization ? { authorization } : {} });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }

    const invalid = await asMember(member, { method: 'POST', url: PREFIX, payload: { url: 'https://example.com/x', events: [] } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });

    const missing = await asMember(member, { method: 'GET', url: `${PREFIX}/${randomUUID()}` });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'Webhook endpoint not found' } });

    const notFound = await asMember(member, { method: 'POST', url: `/cards/${randomUUID()}/views` });
    expect(notFound.json(), 'the app’s own routes keep its own shape').toEqual({ failed: 'no such card' });
  });

  it('limits each member per route with a rate limiter of its own (the app registered none)', async () => {
    const member = await host.signUp('margaret');
    const other = await host.signUp('barbara');
    for (let i = 0; i < API_PER_MINUTE; i++) expect((await asMember(member, { method: 'GET', url: PREFIX })).statusCode).toBe(200);
    const limited = await asMember(member, { method: 'GET', url: PREFIX });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect((await asMember(other, { method: 'GET', url: PREFIX })).statusCode).toBe(200);
  });
});
