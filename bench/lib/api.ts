/** The service's HTTP API as the bench uses it: real requests, as any client would make them. */
import { randomUUID } from 'node:crypto';
import { request } from 'undici';

export interface Owner {
  id: string;
  username: string;
  token: string;
}

async function call<T>(origin: string, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> {
  const res = await request(`${origin}${path}`, {
    method,
    headers: {
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(token && { authorization: `Bearer ${token}` }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as T;
}

export async function registerUser(origin: string, prefix: string): Promise<Owner> {
  const username = `${prefix}${randomUUID().slice(0, 8)}`;
  const { user, token } = await call<{ user: { id: string }; token: string }>(origin, 'POST', '/auth/register', {
    email: `${username}@example.com`,
    username,
    password: 'bench password 123',
  });
  return { id: user.id, username, token };
}

/** Registers `urls` as the owner's endpoints (card.viewed, with `settings` such as cardIds); returns each path's secret for the receiver. */
export async function createEndpoints(
  origin: string,
  owner: Owner,
  urls: readonly string[],
  settings: Record<string, unknown> = {},
): Promise<Record<string, string>> {
  const secrets: Record<string, string> = {};
  for (const url of urls) {
    const endpoint = await call<{ secret: string }>(
      origin,
      'POST',
      '/api/webhooks',
      { url, events: ['card.viewed'], ...settings },
      owner.token,
    );
    secrets[new URL(url).pathname] = endpoint.secret;
  }
  return secrets;
}

export async function createCard(origin: string, owner: Owner, title: string): Promise<string> {
  return (await call<{ id: string }>(origin, 'POST', '/api/cards', { title }, owner.token)).id;
}
