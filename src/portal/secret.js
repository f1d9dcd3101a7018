import { byId, setChildren, time } from './dom.js';
import { announce } from './messages.js';

/**
 * The signing secret, shown once: after a create or a rotation, until the user hides it or leaves
 * the page. It is kept nowhere else (not in storage), so a reload cannot show it again.
 */

let returnFocusTo = null;

export function showSecret({ url, secret, previousSecretExpiresAt }, options = {}) {
  byId('secret-endpoint').textContent = url;
  byId('secret-value').textContent = secret;
  const grace = byId('secret-grace');
  grace.hidden = !options.rotated;
  if (options.rotated) {
    setChildren(
      grace,
      ...(previousSecretExpiresAt
        ? ['The previous secret also signs until ', time(previousSecretExpiresAt), ', so receivers can switch over.']
        : ['The previous secret no longer signs.']),
    );
  }
  byId('copy-secret').textContent = 'Copy secret';
  byId('secret-panel').hidden = false;
  returnFocusTo = options.returnFocusTo ?? null;
  byId('secret-heading').focus();
}

export function hideSecret() {
  byId('secret-value').textContent = '';
  byId('secret-panel').hidden = true;
}

export function initSecretPanel() {
  byId('copy-secret').addEventListener('click', async () => {
    const secret = byId('secret-value').textContent ?? '';
    try {
      await navigator.clipboard.writeText(secret);
      byId('copy-secret').textContent = 'Copied';
      announce('The secret is in your clipboard.');
    } catch {
      // No clipboard access (an older browser, or permission refused): select it for Ctrl+C instead.
      getSelection()?.selectAllChildren(byId('secret-value'));
      announce('Copying is not allowed here: the secret is selected, press Ctrl+C to copy it.');
    }
  });
  byId('dismiss-secret').addEventListener('click', () => {
    hideSecret();
    (returnFocusTo && !returnFocusTo.closest('[hidden]') ? returnFocusTo : byId('endpoints-heading')).focus();
  });
}
