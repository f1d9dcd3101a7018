import { byId, el, setChildren } from './dom.js';
import { feedbackBox } from './messages.js';
import { sendTestEvent, TEST_EVENT_TYPE, testEventExample } from './test-event.js';

/**
 * What each event means, in plain words, said once: in the Event types view, with an example
 * body of each. The examples are the API's own (GET /api/webhooks/event-types); the test event,
 * which that catalogue leaves out because no endpoint subscribes to it, is built here from the
 * shape the API documents. The event checkboxes only carry a short summary and link here.
 */

/** Text in `backticks` is shown as code. */
const PLAIN = {
  'card.viewed': {
    summary: 'someone viewed your profile or one of your cards',
    help: [
      'Someone looked at your public profile or at one of your cards. Your own views never count.',
      '`data.viewer` is who it was if they were signed in, and `null` for an anonymous visitor. `data.source` is how they came: `qr` (a QR code), `link` or `nfc`. `data.cardId` is `null` when they viewed your profile rather than a card.',
    ],
    grouped:
      'An endpoint that groups views (its “Group views of a card within” setting above 0) gets the views of one card within that many seconds as one request, sent when the time is up. It carries the first view, and `data` adds `count` (every view, anonymous and repeated ones included), `firstViewedAt`, `lastViewedAt` and `viewers` (the signed-in people who viewed it, at most 20).',
    sample:
      'DevCard cannot send this event on demand. To cause a real one, open your public profile, `/api/u/<your username>`, in a private window (signed out): every endpoint that receives card.viewed gets it.',
  },
  'contact.saved': {
    summary: 'someone saved one of your cards to their contacts',
    help: [
      'A signed-in DevCard user saved one of your cards to their contacts. It is sent once per person and card: saving the same card again sends nothing.',
      '`data.savedBy` is who saved it, `data.cardId` which card.',
    ],
    sample: 'DevCard cannot send this event on demand: it is sent when another account saves one of your cards.',
  },
  [TEST_EVENT_TYPE]: {
    summary: 'sent only when you ask for it',
    help: [
      'Sent only when you ask for it, to one endpoint, whichever events that endpoint receives. `data.endpointId` is the endpoint. Use it to check that your receiver answers 2xx and verifies the signature; it is signed, logged and retried like any other delivery.',
    ],
  },
};

function richText(text) {
  return text.split('`').map((part, i) => (i % 2 === 1 ? el('code', {}, part) : part));
}

/** Checkboxes named `events`, one per subscribable type, labelled with its name and what it is about. */
export function renderEventChoices(container, eventTypes, idPrefix, checked) {
  setChildren(
    container,
    ...eventTypes.map(({ type, description }) => {
      const id = `${idPrefix}-${type.replace(/[^a-z0-9]/gi, '-')}`;
      return el(
        'div',
        { class: 'event-choice' },
        el('input', { type: 'checkbox', id, name: 'events', value: type, checked: checked.includes(type) }),
        el('label', { for: id }, el('code', {}, type), el('span', { class: 'event-summary' }, ` — ${PLAIN[type]?.summary ?? description}`)),
      );
    }),
  );
}

function example(title, envelope) {
  return [el('h3', {}, title), el('pre', { class: 'payload' }, JSON.stringify(envelope, null, 2))];
}

/** The test event's article offers to send it: the one event the API sends on demand. */
function sendForm(endpoints) {
  if (endpoints.length === 0) return el('p', {}, 'Add an endpoint first, then send it a test event from here or from its Test section.');
  const select = el(
    'select',
    { id: 'sample-endpoint', name: 'endpoint' },
    endpoints.map((endpoint) => el('option', { value: endpoint.id }, endpoint.url)),
  );
  const button = el('button', { type: 'submit' }, 'Send test event');
  const form = el(
    'form',
    { id: 'sample-form', class: 'inline-form feedback-scope', method: 'post' },
    el('label', { for: 'sample-endpoint' }, 'Send one to'),
    select,
    button,
    feedbackBox(),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void sendTestEvent(select.value, button);
  });
  return form;
}

/** The Event types view: every event, the test event last. `endpoints` are where a test event can go. */
export function renderEventHelp(eventTypes, endpoints) {
  const entries = [...eventTypes, { type: TEST_EVENT_TYPE, description: '', example: testEventExample(eventTypes, null) }];
  setChildren(
    byId('event-help'),
    ...entries.map(({ type, description, example: body, coalescedExample }) => {
      const plain = PLAIN[type];
      const headingId = `event-${type.replace(/[^a-z0-9]/gi, '-')}`;
      return el(
        'article',
        { class: 'panel event-type', 'aria-labelledby': headingId, 'data-event-type': type },
        el('h2', { id: headingId }, el('code', {}, type)),
        (plain?.help ?? [description]).map((text) => el('p', {}, richText(text))),
        example('Example body', body),
        coalescedExample && plain?.grouped
          ? [el('p', {}, richText(plain.grouped)), example('Example body, views grouped', coalescedExample)]
          : null,
        el('h3', {}, 'Send a sample'),
        type === TEST_EVENT_TYPE
          ? sendForm(endpoints)
          : el('p', {}, richText(plain?.sample ?? 'DevCard cannot send this event on demand.')),
      );
    }),
  );
}
