import { api } from './api.js';
import { attemptDetails } from './attempt-details.js';
import { byId, el, setChildren, time } from './dom.js';
import { act, announce, reportError } from './messages.js';

/**
 * The delivery log of the open endpoint: newest first, filtered and paged by the API, with each
 * delivery's attempts (attempt-details.js) on demand and a redeliver button. While a delivery on screen is pending the
 * log reloads itself every POLL_MS, and redraws only when something changed, keeping the focus
 * on the button it was on.
 */

const POLL_MS = 1000;
const PAGE_SIZE = 20;
const COLUMNS = 7;

const log = {
  endpointId: null,
  page: 1,
  filters: { status: '', eventType: '' },
  /** Deliveries whose attempts are shown. */
  expanded: new Set(),
  /** Guards against answers of an older load arriving after a newer one. */
  generation: 0,
  /** What the table shows, and how many times it was redrawn (attempts belong to one drawing). */
  drawn: '',
  drawings: 0,
  timer: 0,
};

/** Starts the log of another endpoint, empty until loadLog. */
export function openLog(endpointId) {
  closeLog();
  log.endpointId = endpointId;
  log.page = 1;
  log.filters = { status: byId('log-status').value, eventType: byId('log-event-type').value };
  log.expanded.clear();
  setChildren(byId('log-rows'));
  byId('log-table').hidden = true;
  byId('log-empty').hidden = true;
}

export function closeLog() {
  clearTimeout(log.timer);
  log.generation++;
  log.drawings++;
  log.endpointId = null;
  log.drawn = '';
}

/** Loads now (when the log is shown, after a redelivery, a filter change). */
export function loadLog() {
  clearTimeout(log.timer);
  const generation = ++log.generation;
  const endpointId = log.endpointId;
  if (!endpointId) return Promise.resolve();
  const query = { page: String(log.page), limit: String(PAGE_SIZE) };
  for (const [name, value] of Object.entries(log.filters)) if (value) query[name] = value;
  return api.listDeliveries(endpointId, query).then(
    (result) => {
      if (generation !== log.generation) return;
      draw(result);
      if (result.data.some((delivery) => delivery.status === 'pending')) log.timer = setTimeout(loadLog, POLL_MS);
    },
    (error) => {
      if (generation === log.generation) reportError(error, byId('log-heading'));
    },
  );
}

function draw(result) {
  const fingerprint = JSON.stringify([result, [...log.expanded]]);
  if (fingerprint === log.drawn) return;
  log.drawn = fingerprint;
  log.drawings++;
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focusKey : undefined;

  const { data, pagination } = result;
  byId('log-empty').hidden = data.length > 0;
  byId('log-table').hidden = data.length === 0;
  byId('log-caption').textContent = `${pagination.total} ${pagination.total === 1 ? 'delivery' : 'deliveries'}, newest first`;
  setChildren(byId('log-rows'), data.map(deliveryRows));
  byId('log-page').textContent = `Page ${pagination.page} of ${Math.max(pagination.totalPages, 1)}`;
  byId('log-newer').disabled = pagination.page <= 1;
  byId('log-older').disabled = pagination.page >= pagination.totalPages;

  for (const delivery of data) if (log.expanded.has(delivery.id)) void loadAttempts(delivery.id);
  if (focused) document.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
}

function deliveryRows(delivery) {
  const expanded = log.expanded.has(delivery.id);
  const attemptsId = `attempts-${delivery.id}`;
  const which = el('span', { class: 'visually-hidden' }, ` of the ${delivery.eventType} delivery ${delivery.id}`);

  const toggle = el(
    'button',
    {
      type: 'button',
      class: 'secondary',
      'aria-expanded': String(expanded),
      'aria-controls': attemptsId,
      'data-focus-key': `attempts:${delivery.id}`,
    },
    expanded ? 'Hide attempts' : 'Show attempts',
    which.cloneNode(true),
  );
  toggle.addEventListener('click', () => {
    if (log.expanded.has(delivery.id)) log.expanded.delete(delivery.id);
    else log.expanded.add(delivery.id);
    void loadLog();
  });

  const redeliver = el(
    'button',
    { type: 'button', class: 'secondary', 'data-focus-key': `redeliver:${delivery.id}` },
    'Redeliver',
    which.cloneNode(true),
  );
  redeliver.addEventListener('click', () =>
    act(redeliver, async () => {
      await api.redeliver(log.endpointId, delivery.id);
      log.expanded.add(delivery.id);
      announce('Redelivery queued: the log shows the new attempt when it is made.', redeliver);
      await loadLog();
    }),
  );

  const row = el(
    'tr',
    { 'data-delivery-id': delivery.id, 'data-status': delivery.status },
    el('td', { class: 'date' }, time(delivery.createdAt)),
    el('td', {}, el('code', {}, delivery.eventType)),
    el(
      'td',
      {},
      el('span', { class: `badge ${delivery.status}` }, delivery.status),
      delivery.errorMessage && delivery.errorMessage !== `HTTP ${delivery.responseCode}`
        ? el('p', { class: 'hint' }, delivery.errorMessage)
        : null,
    ),
    el('td', { class: 'number', 'data-attempts': delivery.attempts }, delivery.attempts),
    el('td', {}, delivery.responseCode === null ? '—' : `HTTP ${delivery.responseCode}`),
    el('td', { class: 'date' }, delivery.status === 'pending' ? time(delivery.nextRetryAt) : '—'),
    el('td', {}, el('div', { class: 'row-actions' }, toggle, redeliver)),
  );
  const details = el(
    'tr',
    { id: attemptsId, class: 'attempts-row', hidden: !expanded },
    el('td', { colspan: COLUMNS }, expanded ? el('p', { class: 'hint' }, 'Loading attempts…') : null),
  );
  return [row, details];
}

async function loadAttempts(deliveryId) {
  const drawing = log.drawings;
  try {
    const delivery = await api.getDelivery(log.endpointId, deliveryId);
    const cell = document.querySelector(`#attempts-${CSS.escape(deliveryId)} > td`);
    if (drawing === log.drawings && cell) setChildren(cell, attemptDetails(delivery));
  } catch (error) {
    if (drawing === log.drawings) reportError(error, byId('log-heading'));
  }
}

/** The event filter's choices: every type a delivery can have. */
export function setLogEventTypes(eventTypes) {
  setChildren(byId('log-event-type'), el('option', { value: '' }, 'any'), ...eventTypes.map((type) => el('option', { value: type }, type)));
}

export function initDeliveryLog() {
  const select = byId('log-event-type');
  byId('log-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    log.filters = { status: byId('log-status').value, eventType: select.value };
    log.page = 1;
    void loadLog();
  });
  byId('log-newer').addEventListener('click', () => {
    log.page = Math.max(1, log.page - 1);
    void loadLog();
  });
  byId('log-older').addEventListener('click', () => {
    log.page += 1;
    void loadLog();
  });
}
