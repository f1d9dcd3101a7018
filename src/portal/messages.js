import { byId, el, setChildren } from './dom.js';

/**
 * The two live regions at the top of the page: `status` (polite) says what an action did,
 * `alert` what went wrong. Each message is a new paragraph, so a screen reader announces it even
 * when it repeats the previous one.
 */

export function announce(text) {
  setChildren(byId('alert'));
  setChildren(byId('status'), el('p', {}, text));
}

export function reportError(error) {
  setChildren(byId('status'));
  const details = Array.isArray(error?.details) ? error.details : [];
  const listed = details
    .filter((detail) => detail && typeof detail.message === 'string')
    .map((detail) => el('li', {}, detail.field ? `${detail.field}: ${detail.message}` : detail.message));
  setChildren(
    byId('alert'),
    el('p', {}, error instanceof Error ? error.message : 'Something went wrong.'),
    listed.length > 1 ? el('ul', {}, listed) : null,
  );
}

export function clearMessages() {
  setChildren(byId('status'));
  setChildren(byId('alert'));
}
