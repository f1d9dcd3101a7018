import type { FastifyInstance } from 'fastify';
import type { Session } from './users.ts';

/** Creates a card through the real API; returns its id. */
export async function createCard(app: FastifyInstance, owner: Session, title = 'Card'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/cards', headers: owner.auth, payload: { title } });
  if (res.statusCode !== 201) throw new Error(`create card failed: ${res.statusCode} ${res.body}`);
  return res.json().id;
}
