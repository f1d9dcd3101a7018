import { byId, el, setChildren } from './dom.js';

/** Renders the answer of `POST /api/webhooks/:id/verify-receiver`: the verdict first, then each probe. */

const PROBES = {
  valid: { label: 'Correctly signed', expectAccept: true },
  bad_signature: { label: 'Wrong signature', expectAccept: false },
  stale_timestamp: { label: 'Timestamp 10 minutes old', expectAccept: false },
};

export function renderSelfTest(report) {
  const good = report.verdict === 'ok';
  setChildren(
    byId('self-test-result'),
    el(
      'p',
      { class: good ? 'verdict ok' : 'verdict warn', 'data-verdict': report.verdict },
      el('strong', {}, good ? 'Passed: ' : 'Needs attention: '),
      report.message,
    ),
    el(
      'table',
      {},
      el('caption', {}, 'What your receiver answered'),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col' }, 'Probe'),
          el('th', { scope: 'col' }, 'Should be'),
          el('th', { scope: 'col' }, 'Answer'),
          el('th', { scope: 'col' }, 'Result'),
        ),
      ),
      el(
        'tbody',
        {},
        report.cases.map((probe) => {
          const known = PROBES[probe.name] ?? { label: probe.name, expectAccept: probe.name === 'valid' };
          const asExpected = probe.status !== null && probe.accepted === known.expectAccept;
          return el(
            'tr',
            {},
            el('th', { scope: 'row' }, known.label),
            el('td', {}, known.expectAccept ? 'accepted (2xx)' : 'rejected (4xx)'),
            el('td', {}, probe.status === null ? `no answer: ${probe.error ?? 'unknown error'}` : `HTTP ${probe.status}`),
            el('td', {}, asExpected ? 'as expected' : 'not as expected'),
          );
        }),
      ),
    ),
  );
}

export function clearSelfTest() {
  setChildren(byId('self-test-result'));
}
