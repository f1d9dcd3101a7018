import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { signUp, type Session } from '../helpers/users.ts';

describe('card routes', () => {
  let t: TestApp;
  let alice: Session;
  let bob: Session;

  const createCard = (who: Session, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: '/api/cards', headers: who.auth, payload });
  const save = (who: Session, cardId: string) => t.app.inject({ method: 'POST', url: `/api/cards/${cardId}/save`, headers: who.auth });

  beforeAll(async () => {
    t = await buildTestApp();
    alice = await signUp(t.app, 'alice');
    bob = await signUp(t.app, 'bob');
  });
  afterAll(async () => t.close());

  describe('POST /api/cards and GET /api/cards', () => {
    it('creates a card with defaults', async () => {
      const res = await createCard(alice, { title: '  Engineer  ' });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({
        ownerId: alice.id,
        title: 'Engineer',
        company: null,
        jobTitle: null,
        bio: null,
        email: null,
        phone: null,
        website: null,
        isPublic: true,
      });
      expect(res.json().id).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('creates a card with every field', async () => {
      const payload = {
        title: 'Founder',
        company: 'Analytical Engines',
        jobTitle: 'CTO',
        bio: 'b'.repeat(1000),
        email: 'Ada@Example.com',
        phone: '+44 20 7946 0958',
        website: 'https://ada.example.com/about',
        isPublic: false,
      };
      const res = await createCard(alice, payload);
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ ...payload, email: 'ada@example.com' });
    });

    it.each([
      ['no title', {}, 'title'],
      ['empty title', { title: '   ' }, 'title'],
      ['long title', { title: 't'.repeat(101) }, 'title'],
      ['long bio', { title: 'x', bio: 'b'.repeat(1001) }, 'bio'],
      ['bad email', { title: 'x', email: 'nope' }, 'email'],
      ['non-http website', { title: 'x', website: 'javascript:alert(1)' }, 'website'],
      ['ftp website', { title: 'x', website: 'ftp://example.com' }, 'website'],
      ['bad phone', { title: 'x', phone: 'call me' }, 'phone'],
      ['non-boolean isPublic', { title: 'x', isPublic: 'yes' }, 'isPublic'],
      ['unknown field', { title: 'x', ownerId: '00000000-0000-0000-0000-000000000000' }, 'ownerId'],
    ])('rejects %s with 400 VALIDATION_ERROR', async (_name, payload, mention) => {
      const res = await createCard(alice, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_ERROR');
      expect(JSON.stringify(res.json().error.details)).toContain(mention);
    });

    it('lists only the caller’s own cards, private ones included', async () => {
      await createCard(bob, { title: 'Bob card' });
      const mine = await t.app.inject({ method: 'GET', url: '/api/cards', headers: alice.auth });
      expect(mine.statusCode).toBe(200);
      const cards = mine.json() as Array<{ ownerId: string; title: string; isPublic: boolean }>;
      expect(cards.map((c) => c.title)).toEqual(['Engineer', 'Founder']);
      expect(cards.every((c) => c.ownerId === alice.id)).toBe(true);
      expect(cards.some((c) => !c.isPublic)).toBe(true);

      const bobs = await t.app.inject({ method: 'GET', url: '/api/cards', headers: bob.auth });
      expect(bobs.json().map((c: { title: string }) => c.title)).toEqual(['Bob card']);
    });

    it('requires authentication', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/cards', payload: { title: 'x' } });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    });
  });

  describe('POST /api/cards/:id/save', () => {
    let publicCard: string;
    let privateCard: string;
    let bobsOwn: string;

    beforeAll(async () => {
      publicCard = (await createCard(alice, { title: 'Saveable' })).json().id;
      privateCard = (await createCard(alice, { title: 'Hidden', isPublic: false })).json().id;
      bobsOwn = (await createCard(bob, { title: 'Mine' })).json().id;
    });

    it('saves once: 201 {saved: true}, then 200 {alreadySaved: true}', async () => {
      const first = await save(bob, publicCard);
      expect(first.statusCode).toBe(201);
      expect(first.json()).toEqual({ saved: true });
      const second = await save(bob, publicCard);
      expect(second.statusCode).toBe(200);
      expect(second.json()).toEqual({ alreadySaved: true });
      expect(await t.db.prisma.savedCard.count({ where: { userId: bob.id, cardId: publicCard } })).toBe(1);
    });

    it('of 10 concurrent saves exactly one creates the row', async () => {
      const carol = await signUp(t.app, 'carol');
      const results = await Promise.all(Array.from({ length: 10 }, () => save(carol, publicCard)));
      const statuses = results.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(9);
      for (const r of results.filter((x) => x.statusCode === 200)) expect(r.json()).toEqual({ alreadySaved: true });
      expect(await t.db.prisma.savedCard.count({ where: { userId: carol.id, cardId: publicCard } })).toBe(1);
    });

    it('404s for unknown, malformed and other people’s private cards', async () => {
      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', privateCard]) {
        const res = await save(bob, id);
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
    });

    it('refuses to save your own card (public or private) with 400 CANNOT_SAVE_OWN_CARD', async () => {
      for (const [who, id] of [
        [bob, bobsOwn],
        [alice, privateCard],
      ] as const) {
        const res = await save(who, id);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.code).toBe('CANNOT_SAVE_OWN_CARD');
      }
      expect(await t.db.prisma.savedCard.count({ where: { cardId: { in: [bobsOwn, privateCard] } } })).toBe(0);
    });

    it('requires authentication', async () => {
      const res = await t.app.inject({ method: 'POST', url: `/api/cards/${publicCard}/save` });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    });
  });
});
