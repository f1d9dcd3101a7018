import { api } from './api.js';
import { confirmAction } from './confirm.js';
import { byId, el } from './dom.js';
import { dateTimeField, onSubmit } from './form-errors.js';
import { announce } from './messages.js';

/**
 * Recovery after an outage of the receiver: the failed deliveries of a time window (the last hour,
 * the last 24 hours, or from and to a time) are sent again, after a question, and the answer says
 * how many were queued and how many were left alone at the attempt cap.
 */

const HOUR_MS = 3_600_000;
const PRESETS = {
  '1h': { hours: 1, words: 'in the last hour' },
  '24h': { hours: 24, words: 'in the last 24 hours' },
};

const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** The window chosen in `form`, or null after saying at its field what is wrong. */
function chosenWindow(form) {
  const preset = PRESETS[form.elements.namedItem('window').value];
  if (preset) return { since: new Date(Date.now() - preset.hours * HOUR_MS).toISOString(), words: preset.words };
  const since = dateTimeField(form, 'since');
  if (since === null) return null;
  const until = dateTimeField(form, 'until', { optional: true });
  if (until === null) return null;
  return { since, until, words: `from ${when.format(new Date(since))} to ${until ? when.format(new Date(until)) : 'now'}` };
}

function resultMessage({ requeued, skipped }) {
  const queued =
    requeued === 0
      ? 'No failed delivery in that window to send again.'
      : [
          el('strong', { 'data-requeued': requeued }, String(requeued)),
          ` failed ${requeued === 1 ? 'delivery' : 'deliveries'} queued again, oldest first.`,
        ];
  const left =
    skipped === 0
      ? null
      : [
          ' ',
          el('strong', { 'data-skipped': skipped }, String(skipped)),
          ` left alone: ${skipped === 1 ? 'it has' : 'they have'} had as many attempts as a delivery may have.`,
        ];
  return [queued, left];
}

/** `endpoint.current()` is the open endpoint; `recovered()` shows the deliveries as they are now. */
export function initRecover(endpoint, recovered) {
  const form = byId('recover-form');
  const choice = byId('recover-window');
  choice.addEventListener('change', () => {
    byId('recover-custom').hidden = choice.value !== 'custom';
  });
  let chosen = null;
  onSubmit(
    form,
    async () => {
      const { since, until } = chosen;
      const result = await api.recover(endpoint.current().id, until ? { since, until } : { since });
      announce(resultMessage(result), form);
      recovered();
    },
    {
      confirm: async () => {
        chosen = chosenWindow(form);
        if (!chosen) return false;
        return confirmAction({
          title: 'Send failed deliveries again?',
          message:
            `Every delivery to ${endpoint.current().url} created ${chosen.words} that failed is sent again, oldest first, ` +
            'under its own webhook-id, so your receiver can tell one it already processed.',
          confirmLabel: 'Send again',
        });
      },
    },
  );
}
