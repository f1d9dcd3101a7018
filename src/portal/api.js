/**
 * The portal's only way to the service: the public JSON API, as any other client calls it, with
 * the bearer token of the session. The token lives in sessionStorage: it survives a reload of
 * the tab and is gone when the tab closes.
 */

const TOKEN_KEY = 'devcard-portal.token';
const USER_KEY = 'devcard-portal.username';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  username: () => sessionStorage.getItem(USER_KEY) ?? '',
  start(token, username) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, username);
  },
  end() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
  },
};

/** An error answer of the API: `{error: {code, message, details?}}` and its status. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let sessionLost = () => {};

/** Called when the API refuses the session's token (expired, or the account is gone). */
export function onSessionLost(handler) {
  sessionLost = handler;
}

async function call(method, path, body) {
  const token = session.token();
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'NETWORK_ERROR', 'The service could not be reached. Check your connection and try again.');
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = data && typeof data === 'object' && data.error ? data.error : {};
  const failure = new ApiError(
    response.status,
    typeof error.code === 'string' ? error.code : `HTTP_${response.status}`,
    typeof error.message === 'string' ? error.message : `The request failed (HTTP ${response.status}).`,
    error.details,
  );
  if (response.status === 401 && token) sessionLost(failure);
  throw failure;
}

const hook = (id) => `/api/webhooks/${encodeURIComponent(id)}`;

export const api = {
  login: (login, password) => call('POST', '/auth/login', { login, password }),
  register: (input) => call('POST', '/auth/register', input),
  eventTypes: () => call('GET', '/api/webhooks/event-types'),
  listCards: () => call('GET', '/api/cards'),
  listEndpoints: () => call('GET', '/api/webhooks'),
  getEndpoint: (id) => call('GET', hook(id)),
  createEndpoint: (input) => call('POST', '/api/webhooks', input),
  updateEndpoint: (id, changes) => call('PATCH', hook(id), changes),
  deleteEndpoint: (id) => call('DELETE', hook(id)),
  rotateSecret: (id, gracePeriodSeconds) => call('PATCH', `${hook(id)}/rotate-secret`, { gracePeriodSeconds }),
  sendTest: (id) => call('POST', `${hook(id)}/test`),
  verifyReceiver: (id) => call('POST', `${hook(id)}/verify-receiver`),
  listDeliveries: (id, query) => call('GET', `${hook(id)}/deliveries?${new URLSearchParams(query)}`),
  getDelivery: (id, deliveryId) => call('GET', `${hook(id)}/deliveries/${encodeURIComponent(deliveryId)}`),
  redeliver: (id, deliveryId) => call('POST', `${hook(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`),
  recover: (id, window) => call('POST', `${hook(id)}/recover`, window),
  health: (id, window) => call('GET', `${hook(id)}/health?${new URLSearchParams({ window })}`),
};
