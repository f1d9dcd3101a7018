import { byId, el } from './dom.js';

/**
 * The two live regions at the top of the page: `status` (polite) says what an action did,
 * `alert` what went wrong. Each message is a new paragraph, so a screen reader announces it even
 * when it repeats the previous one.
 */

export function announce(text) {
  byId('alert').replaceChildren();
  byId('status').replaceChildren(el('p', {}, text));
}

export function reportError(error) {
  byId('status').replaceChildren();
  const details = Array.isArray(error?.details) ? error.details : [];
  const listed = details
    .filter((detail) => detail && typeof detail.message === 'string')
    .map((detail) => el('li', {}, detail.field ? `${detail.field}: ${detail.message}` : detail.message));
  byId('alert').replaceChildren(
    el('p', {}, error instanceof Error ? error.message : 'Something went wrong.'),
    listed.length > 1 ? el('ul', {}, listed) : null,
  );
}

export function clearMessages() {
  byId('status').replaceChildren();
  byId('alert').replaceChildren();
}
