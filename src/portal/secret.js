import { api } from './api.js';
import { byId, el, setChildren, time } from './dom.js';
import { confirmAction } from './confirm.js';
import { onSubmit } from './form-errors.js';
import { announce } from './messages.js';

/**
 * The Signing secret section: which secrets sign (by fingerprint), rotation, and a new secret,
 * shown once: after a create or a rotation, until the user hides it or leaves the endpoint. It is
 * kept nowhere else (not in storage), so a reload cannot show it again.
 */

let returnFocusTo = null;

const GRACE_WORDS = {
  0: 'stops signing at once',
  3600: 'keeps signing for 1 hour',
  86400: 'keeps signing for 24 hours',
  604800: 'keeps signing for 7 days',
};

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

function fingerprint(value) {
  return el('code', { class: 'fingerprint' }, value);
}

/** The fingerprints and the previous secret's overlap of `endpoint` (GET /api/webhooks/:id). */
export function fillSecretTab(endpoint) {
  setChildren(byId('secret-fingerprint'), endpoint.secretFingerprint ? fingerprint(endpoint.secretFingerprint) : '—');
  const overlap = endpoint.previousSecretOverlap;
  setChildren(
    byId('secret-previous'),
    ...(overlap
      ? [
          overlap.fingerprint ? fingerprint(overlap.fingerprint) : 'kept',
          overlap.active ? ', signs too until ' : ', stopped signing ',
          time(overlap.expiresAt),
        ]
      : ['none']),
  );
  const message = byId('secret-overlap-message');
  message.hidden = !overlap?.message;
  message.textContent = overlap?.message ?? '';
}

export function initSecretTab(endpoint) {
  byId('copy-secret').addEventListener('click', async () => {
    const secret = byId('secret-value').textContent ?? '';
    const button = byId('copy-secret');
    try {
      await navigator.clipboard.writeText(secret);
      button.textContent = 'Copied';
      announce('The secret is in your clipboard.', button);
    } catch {
      // No clipboard access (an older browser, or permission refused): select it for Ctrl+C instead.
      getSelection()?.selectAllChildren(byId('secret-value'));
      announce('Copying is not allowed here: the secret is selected, press Ctrl+C to copy it.', button);
    }
  });
  byId('dismiss-secret').addEventListener('click', () => {
    hideSecret();
    (returnFocusTo && !returnFocusTo.closest('[hidden]') ? returnFocusTo : byId('secret-tab-heading')).focus();
  });

  const form = byId('rotate-form');
  const grace = () => Number(byId('rotate-grace').value);
  onSubmit(
    form,
    async () => {
      const { id, url } = endpoint.current();
      const rotated = await api.rotateSecret(id, grace());
      await endpoint.reload();
      showSecret({ url, ...rotated }, { rotated: true, returnFocusTo: byId('rotate-heading') });
      announce('New secret created. Copy it now: it is shown only once.', form);
    },
    {
      confirm: () =>
        confirmAction({
          title: 'Rotate the signing secret?',
          message:
            `A new secret signs requests to ${endpoint.current().url} from now on, and the old one ` +
            `${GRACE_WORDS[grace()] ?? `keeps signing for ${grace()} s`}. A receiver still verifying with the old secret then rejects every request.`,
          confirmLabel: 'Rotate secret',
        }),
    },
  );
}
