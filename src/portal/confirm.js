import { byId } from './dom.js';

/**
 * The question asked before an action that cannot be taken back (disable, rotate the secret,
 * delete): a modal `<dialog>`, so the keyboard stays in it, Escape cancels, Cancel has the focus
 * first, and the focus goes back to the button that asked.
 */

let settle = null;

export function initConfirm() {
  const dialog = byId('confirm-dialog');
  byId('confirm-cancel').addEventListener('click', () => dialog.close('cancel'));
  byId('confirm-ok').addEventListener('click', () => dialog.close('confirm'));
  dialog.addEventListener('close', () => {
    settle?.(dialog.returnValue === 'confirm');
    settle = null;
  });
}

/** Resolves true when the user confirmed. */
export function confirmAction({ title, message, confirmLabel }) {
  const dialog = byId('confirm-dialog');
  const opener = document.activeElement;
  byId('confirm-title').textContent = title;
  byId('confirm-message').textContent = message;
  byId('confirm-ok').textContent = confirmLabel;
  dialog.returnValue = '';
  dialog.showModal();
  byId('confirm-cancel').focus();
  return new Promise((resolve) => {
    settle = (confirmed) => {
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(confirmed);
    };
  });
}
