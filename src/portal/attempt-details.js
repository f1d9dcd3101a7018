import { el, time } from './dom.js';

/**
 * One delivery's attempts and, for each, the signature debugger of the delivery detail: what
 * was signed and the headers that carried it, the fingerprints of the secrets that signed, the
 * receiver's clock skew and, when the receiver refused the request (401 or 403), the API's hints
 * for the usual causes. The newest refused attempt has it open: that is what a user debugging a
 * receiver came to read.
 */

const HINT_TITLES = {
  RECEIVER_ON_PREVIOUS_SECRET: 'Your receiver still uses the previous secret.',
  BODY_RESERIALISED: 'Verify the raw body.',
  SECRET_NOT_DECODED: 'Decode the secret into the key.',
  CLOCK_SKEW: 'Check the clocks.',
};

/** How far from their clock receivers usually accept a webhook-timestamp (the API's DEFAULT_TOLERANCE_SECONDS). */
const TOLERANCE_SECONDS = 300;

function responseText(attempt) {
  if (attempt.responseCode === null) return el('span', { class: 'badge failed' }, 'no response');
  const ok = attempt.responseCode >= 200 && attempt.responseCode < 300;
  return el('span', { class: ok ? 'badge success' : 'badge failed' }, `HTTP ${attempt.responseCode}`);
}

function skewText({ clockSkewSeconds, receiverDate }) {
  if (clockSkewSeconds === null) return 'unknown: the answer had no Date header';
  const seconds = Math.abs(clockSkewSeconds);
  const sign = clockSkewSeconds < 0 ? '−' : '+';
  const way = clockSkewSeconds < 0 ? 'behind' : 'ahead of';
  const verdict =
    seconds > TOLERANCE_SECONDS ? 'more than the 5 minutes receivers usually accept' : 'within the 5 minutes receivers usually accept';
  return [
    el('strong', { 'data-skew': clockSkewSeconds }, `${sign}${seconds} s`),
    `: the receiver's clock (its Date header said `,
    time(receiverDate),
    `) was ${seconds} s ${way} the timestamp we sent, ${verdict}.`,
  ];
}

function fact(term, ...description) {
  return [el('dt', {}, term), el('dd', {}, description)];
}

function headerRow(name, value, note) {
  return el(
    'tr',
    { 'data-header': name },
    el('th', { scope: 'row' }, el('code', {}, name)),
    el('td', {}, el('code', {}, value), note ? el('span', { class: 'hint' }, ` ${note}`) : null),
  );
}

/** The request's headers as far as the API recorded them: signatures are not kept, only what they signed. */
function headersSent(delivery, signature) {
  const secrets = signature.secretVersions.length;
  const perSecret = secrets === 1 ? '(one signature)' : `(${secrets} signatures, one per secret above)`;
  return el(
    'table',
    { class: 'headers-sent' },
    el('caption', {}, 'Headers sent'),
    el('tbody', {}, [
      headerRow('content-type', 'application/json'),
      headerRow('webhook-id', signature.webhookId),
      headerRow('webhook-timestamp', String(signature.timestamp), `(${new Date(signature.timestamp * 1000).toISOString()})`),
      headerRow('webhook-signature', 'v1,<base64>', `${perSecret}, separated by spaces`),
      headerRow('x-devcard-event', delivery.eventType),
      headerRow('x-devcard-delivery', delivery.id),
      headerRow('x-devcard-signature', 'sha256=<hex>', `${perSecret}, separated by commas`),
    ]),
  );
}

function signedFacts(delivery, signature) {
  return [
    el(
      'dl',
      { class: 'facts' },
      fact(
        'Signed with',
        signature.secretVersions.map(({ version, fingerprint }, i) => [
          i > 0 ? ', ' : null,
          `${version} secret `,
          el('code', { class: 'fingerprint', 'data-fingerprint': fingerprint }, fingerprint),
        ]),
      ),
      fact('Clock skew', skewText(signature)),
      fact('Body', `${signature.bodyBytes} bytes, sha256 `, el('code', {}, signature.bodySha256)),
      fact('webhook-signature signs', el('code', {}, signature.signedContent)),
    ),
    headersSent(delivery, signature),
    el(
      'p',
      { class: 'hint' },
      'The signatures themselves are not kept: compute yours over what is signed, with the secret of that fingerprint, and compare.',
    ),
  ];
}

function signatureDebugger(delivery, attempt, open) {
  const refused = attempt.hints.length > 0;
  return el(
    'details',
    { class: refused ? 'debugger refused' : 'debugger', open, 'data-debugger': attempt.attemptNumber },
    el('summary', {}, refused ? `Why the receiver may have refused it (HTTP ${attempt.responseCode})` : 'What was signed'),
    refused
      ? el(
          'ul',
          { class: 'hints' },
          attempt.hints.map((hint) =>
            el('li', { 'data-hint': hint.code }, el('strong', {}, HINT_TITLES[hint.code] ?? hint.code), ' ', hint.message),
          ),
        )
      : null,
    attempt.signature ? signedFacts(delivery, attempt.signature) : el('p', { class: 'hint' }, 'What this attempt signed was not recorded.'),
  );
}

/** A long body scrolls within its box, which keyboard users can then scroll too. */
function scrollable(className, text) {
  return el('pre', { class: className, tabindex: 0 }, text);
}

function attemptItem(delivery, attempt, open) {
  return el(
    'li',
    { class: 'attempt', value: attempt.attemptNumber, 'data-attempt': attempt.attemptNumber },
    el(
      'p',
      { class: 'attempt-head' },
      el('strong', {}, `Attempt ${attempt.attemptNumber}`),
      ' · ',
      time(attempt.startedAt),
      ' · ',
      `${attempt.durationMs} ms`,
      ' · ',
      responseText(attempt),
    ),
    // The API words a refusal as its status, already shown above.
    attempt.error && attempt.error !== `HTTP ${attempt.responseCode}` ? el('p', { class: 'attempt-error' }, attempt.error) : null,
    attempt.responseBody ? [el('p', { class: 'label' }, 'Response body'), scrollable('response-body', attempt.responseBody)] : null,
    attempt.signature || attempt.hints.length > 0 ? signatureDebugger(delivery, attempt, open) : null,
  );
}

/** The content of a delivery's expanded row, from GET /api/webhooks/:id/deliveries/:deliveryId. */
export function attemptDetails(delivery) {
  const { attempts } = delivery;
  const newestRefused = attempts.findLast((attempt) => attempt.hints.length > 0);
  return [
    attempts.length === 0 ? el('p', { class: 'hint' }, 'No attempt made yet.') : null,
    delivery.attemptCount > attempts.length
      ? el('p', { class: 'hint' }, `The newest ${attempts.length} of ${delivery.attemptCount} attempts.`)
      : null,
    attempts.length > 0
      ? el(
          'ol',
          { class: 'attempts', 'aria-label': `Attempts of delivery ${delivery.id}` },
          attempts.map((attempt) => attemptItem(delivery, attempt, attempt === newestRefused)),
        )
      : null,
    el('details', {}, el('summary', {}, 'Payload'), scrollable('payload', JSON.stringify(delivery.payload, null, 2))),
  ];
}
