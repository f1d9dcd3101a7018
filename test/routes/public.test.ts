import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { signUp, type Session } from '../helpers/users.ts';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

describe('public routes', () => {
  let t: TestApp;
  let owner: Session;
  let visitor: Session;
  let publicCard: string;
  let privateCard: string;
  let visitorsCard: string;

  async function createCard(who: Session, payload: Record<string, unknown>): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: '/api/cards', headers: who.auth, payload });
    expect(res.statusCode).toBe(201);
    return res.json().id;
  }
  const get = (url: string, who?: Session) => t.app.inject({ method: 'GET', url, headers: who?.auth ?? {} });
  const views = () => t.db.prisma.cardView.findMany();
  // Ids of the views recorded so far, so a new one is found without relying on timestamps.
  let seen = new Set<string>();
  beforeEach(async () => {
    seen = new Set((await views()).map((v) => v.id));
  });
  async function expectOneNewView(expected: Record<string, unknown>) {
    const all = await views();
    const added = all.filter((v) => !seen.has(v.id));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject(expected);
    seen = new Set(all.map((v) => v.id));
  }
  async function expectNoNewView() {
    expect((await views()).filter((v) => !seen.has(v.id))).toEqual([]);
  }

  beforeAll(async () => {
    t = await buildTestApp();
    owner = await signUp(t.app, 'owner');
    visitor = await signUp(t.app, 'visitor');
    publicCard = await createCard(owner, { title: 'Public', company: 'Acme' });
    privateCard = await createCard(owner, { title: 'Private', isPublic: false });
    visitorsCard = await createCard(visitor, { title: 'Visitor card' });
  });
  afterAll(async () => t.close());

  describe('GET /api/u/:username', () => {
    it('shows the profile and its public cards only, without the email', async () => {
      const res = await get('/api/u/owner');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.user).toEqual({ id: owner.id, username: 'owner', displayName: 'owner', createdAt: expect.any(String) });
      expect(body.cards.map((c: { id: string }) => c.id)).toEqual([publicCard]);
      expect(JSON.stringify(body)).not.toContain('owner@example.com');
      expect(JSON.stringify(body)).not.toMatch(/password/i);
    });

    it('matches the username case-insensitively', async () => {
      expect((await get('/api/u/OWNER')).statusCode).toBe(200);
    });

    it('404s for an unknown user', async () => {
      const res = await get('/api/u/nobody_here');
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    });

    it('records an anonymous view with cardId null and the default source', async () => {
      await get('/api/u/owner');
      await expectOneNewView({ ownerId: owner.id, cardId: null, viewerId: null, source: 'link' });
    });

    it('records the viewer when a token is sent, and the source', async () => {
      expect((await get('/api/u/owner?source=qr', visitor)).statusCode).toBe(200);
      await expectOneNewView({ ownerId: owner.id, cardId: null, viewerId: visitor.id, source: 'qr' });
    });

    it('does not record the owner viewing their own profile', async () => {
      expect((await get('/api/u/owner', owner)).statusCode).toBe(200);
      await expectNoNewView();
    });

    it('ignores unrelated query parameters', async () => {
      expect((await get('/api/u/owner?utm_source=newsletter&source=nfc')).statusCode).toBe(200);
    });
  });

  describe('GET /api/u/card/:cardId', () => {
    it('shows a public card with its owner', async () => {
      const res = await get(`/api/u/card/${publicCard}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: publicCard, title: 'Public', company: 'Acme', owner: { id: owner.id, username: 'owner' } });
      expect(res.json().owner).not.toHaveProperty('email');
    });

    it('404s for unknown and malformed ids', async () => {
      for (const id of [UNKNOWN_ID, 'not-a-uuid', '123', "'; DROP TABLE cards; --"]) {
        const res = await get(`/api/u/card/${encodeURIComponent(id)}`);
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
    });

    it('hides a private card from others (404) but shows it to its owner (200)', async () => {
      for (const who of [undefined, visitor]) {
        const res = await get(`/api/u/card/${privateCard}`, who);
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
      const mine = await get(`/api/u/card/${privateCard}`, owner);
      expect(mine.statusCode).toBe(200);
      expect(mine.json()).toMatchObject({ id: privateCard, isPublic: false });
      await expectNoNewView();
    });

    it('records the view with its card, viewer and source', async () => {
      expect((await get(`/api/u/card/${publicCard}?source=nfc`, visitor)).statusCode).toBe(200);
      await expectOneNewView({ ownerId: owner.id, cardId: publicCard, viewerId: visitor.id, source: 'nfc' });
      expect((await get(`/api/u/card/${publicCard}`)).statusCode).toBe(200);
      await expectOneNewView({ ownerId: owner.id, cardId: publicCard, viewerId: null, source: 'link' });
    });

    it('does not record self-views', async () => {
      expect((await get(`/api/u/card/${publicCard}`, owner)).statusCode).toBe(200);
      await expectNoNewView();
    });
  });

  describe('GET /api/u/:username/card/:cardId', () => {
    it('shows the user’s card', async () => {
      const res = await get(`/api/u/owner/card/${publicCard}?source=qr`, visitor);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: publicCard, owner: { username: 'owner' } });
    });

    it('404s for a card of another user, an unknown user or card, and a malformed id', async () => {
      for (const url of [
        `/api/u/owner/card/${visitorsCard}`,
        `/api/u/visitor/card/${publicCard}`,
        `/api/u/nobody_here/card/${publicCard}`,
        `/api/u/owner/card/${UNKNOWN_ID}`,
        '/api/u/owner/card/not-a-uuid',
      ]) {
        const res = await get(url);
        expect(res.statusCode, url).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
      }
      await expectNoNewView();
    });

    it('hides a private card from others but shows it to its owner', async () => {
      expect((await get(`/api/u/owner/card/${privateCard}`, visitor)).statusCode).toBe(404);
      expect((await get(`/api/u/owner/card/${privateCard}`)).statusCode).toBe(404);
      expect((await get(`/api/u/owner/card/${privateCard}`, owner)).statusCode).toBe(200);
    });

    it('records views, not self-views', async () => {
      await get(`/api/u/owner/card/${publicCard}`, owner);
      await expectNoNewView();
      await get(`/api/u/owner/card/${publicCard}?source=qr`);
      await expectOneNewView({ ownerId: owner.id, cardId: publicCard, viewerId: null, source: 'qr' });
    });
  });

  describe('every public route', () => {
    const urls = () => ['/api/u/owner', `/api/u/card/${publicCard}`, `/api/u/owner/card/${publicCard}`];

    it('rejects a bad source with 400 VALIDATION_ERROR and records nothing', async () => {
      for (const url of urls()) {
        for (const source of ['email', 'QR', '', 'qr&source=nfc']) {
          const res = await get(`${url}?source=${source}`);
          expect(res.statusCode, `${url} ${source}`).toBe(400);
          expect(res.json().error.code).toBe('VALIDATION_ERROR');
          expect(res.json().error.details[0].field).toBe('querystring.source');
        }
      }
      await expectNoNewView();
    });

    it('rejects an invalid token with 401 INVALID_TOKEN rather than treating it as anonymous', async () => {
      for (const url of urls()) {
        const res = await t.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer garbage' } });
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('INVALID_TOKEN');
      }
    });

    it('answers 401, not 500, to a valid token whose account no longer exists', async () => {
      const ghost = await signUp(t.app, 'ghost');
      await t.db.prisma.user.delete({ where: { id: ghost.id } });
      for (const url of urls()) {
        const res = await get(url, ghost);
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('INVALID_TOKEN');
      }
      const save = await t.app.inject({ method: 'POST', url: `/api/cards/${publicCard}/save`, headers: ghost.auth });
      expect(save.statusCode).toBe(401);
    });
  });

  describe('a user named "card"', () => {
    let card: Session;
    let cardsCard: string;
    beforeAll(async () => {
      card = await signUp(t.app, 'card');
      cardsCard = await createCard(card, { title: 'Card of card' });
    });

    it('has a profile at /api/u/card', async () => {
      const res = await get('/api/u/card');
      expect(res.statusCode).toBe(200);
      expect(res.json().user.username).toBe('card');
      expect(res.json().cards.map((c: { id: string }) => c.id)).toEqual([cardsCard]);
    });

    it('has cards at /api/u/card/card/:cardId, while /api/u/card/:cardId still works', async () => {
      const res = await get(`/api/u/card/card/${cardsCard}`);
      expect(res.statusCode).toBe(200);
      expect(res.json().id).toBe(cardsCard);
      expect((await get(`/api/u/card/card/${publicCard}`)).statusCode).toBe(404);
      expect((await get(`/api/u/card/${cardsCard}`)).statusCode).toBe(200);
    });
  });
});
