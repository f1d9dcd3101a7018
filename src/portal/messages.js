import { busy, byId, el, setChildren } from './dom.js';

/**
 * What an action did, or why it failed, is said next to it: each `.feedback-scope` (a form, the
 * section of an action) holds a `.feedback` box of two live regions, a polite one for what
 * happened and an alert for what went wrong. Anything outside a scope uses the box at the top of
 * the page. Each message is a new paragraph, so a screen reader announces it even when it
 * repeats the previous one.
 */

function regions() {
  return [el('div', { class: 'feedback-status', role: 'status' }), el('div', { class: 'feedback-alert', role: 'alert' })];
}

/** Fills the boxes of the page. */
export function initFeedback() {
  for (const box of document.querySelectorAll('.feedback')) setChildren(box, regions());
}

/** A box for a scope built by script. */
export function feedbackBox() {
  return el('div', { class: 'feedback' }, regions());
}

function regionsNear(near) {
  const box = (near instanceof Element && near.closest('.feedback-scope')?.querySelector('.feedback')) || byId('feedback-main');
  return { status: box.querySelector('[role="status"]'), alert: box.querySelector('[role="alert"]') };
}

/** `message` is text, or text and nodes (a link to where the result shows). */
export function announce(message, near) {
  const { status, alert } = regionsNear(near);
  setChildren(alert);
  setChildren(status, el('p', {}, message));
}

/** The sentence a user reads for a failure: the API's own message, never an empty, `null` or `undefined` one. */
export function errorText(error) {
  const message = typeof error?.message === 'string' ? error.message.trim() : '';
  return message && message !== 'null' && message !== 'undefined' ? message : 'Something went wrong. Try again.';
}

export function reportError(error, near) {
  const { status, alert } = regionsNear(near);
  setChildren(status);
  setChildren(alert, el('p', {}, errorText(error)));
}

/** Empties every box: a new view starts without the messages of the last one. */
export function clearMessages() {
  for (const region of document.querySelectorAll('.feedback > [role]')) setChildren(region);
}

/** Runs `action` with `button` busy; a failure is said next to the button. */
export function act(button, action) {
  return busy(button, async () => {
    try {
      await action();
    } catch (error) {
      reportError(error, button);
    }
  });
}
