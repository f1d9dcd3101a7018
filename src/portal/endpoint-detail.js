import { api } from './api.js';
import { cardsText, rateText } from './card-choices.js';
import { byId, el, setChildren, time } from './dom.js';
import { closeHealth, initHealth, loadHealth, openHealth } from './delivery-health.js';
import { closeLog, loadLog, openLog } from './delivery-log.js';
import { statusBadge } from './endpoint-list.js';
import { fillSettingsForm, initSettings, showActiveState } from './endpoint-settings.js';
import { fillTestTab, initTestTab } from './endpoint-testing.js';
import { initRecover } from './recover.js';
import { ENDPOINT_TABS, endpointHref } from './routes.js';
import { fillSecretTab, hideSecret, initSecretTab } from './secret.js';
import { clearSelfTest } from './self-test.js';

/**
 * The open endpoint: a summary above four sections shown one at a time, each at its own address —
 * its deliveries, its settings, its signing secret, and tests of its receiver.
 */

const TAB_HEADINGS = { deliveries: 'log-heading', settings: 'settings-heading', secret: 'secret-tab-heading', test: 'test-heading' };

let current = null;
let tab = null;
let changed = () => {};

export const openEndpointId = () => current?.id ?? null;

/** What the sections share: the endpoint as last read, and a way to read it again after a change. */
const endpoint = {
  current: () => current,
  async reload() {
    if (!current) return;
    current = await api.getEndpoint(current.id);
    showFacts();
    showActiveState(current);
    fillSecretTab(current);
    changed(current);
  },
};

/** `onChanged(endpoint)` after every change the list should show; `onDeleted(endpoint)` after a delete; `eventTypes()` the catalogue. */
export function initEndpointDetail({ onChanged, onDeleted, eventTypes }) {
  changed = onChanged;
  initSettings(endpoint, onDeleted);
  initSecretTab(endpoint);
  initTestTab(endpoint, eventTypes);
  initHealth();
  initRecover(endpoint, () => {
    void loadLog();
    void loadHealth();
  });
}

/** Shows `detail` (GET /api/webhooks/:id); the sections start afresh when it is another endpoint. */
export function openEndpoint(detail) {
  const switching = current?.id !== detail.id;
  current = detail;
  for (const link of document.querySelectorAll('.tabs [data-tab]')) link.setAttribute('href', endpointHref(detail.id, link.dataset.tab));
  byId('log-empty-test').setAttribute('href', endpointHref(detail.id, 'test'));
  showFacts();
  showActiveState(detail);
  fillSecretTab(detail);
  if (switching) {
    tab = null;
    hideSecret();
    fillSettingsForm(detail);
    fillTestTab(detail);
    openLog(detail.id);
    openHealth(detail.id);
  }
}

export function closeEndpoint() {
  current = null;
  tab = null;
  closeLog();
  closeHealth();
  hideSecret();
  clearSelfTest();
}

/** Shows one section; the delivery log and the health charts reload each time it is shown. */
export function showTab(name, { focus = false } = {}) {
  for (const other of ENDPOINT_TABS) byId(`tab-${other}`).hidden = other !== name;
  for (const link of document.querySelectorAll('.tabs [data-tab]')) {
    if (link.dataset.tab === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (name === 'deliveries' && tab !== name) {
    void loadLog();
    void loadHealth();
  }
  tab = name;
  if (focus) byId(TAB_HEADINGS[name]).focus();
}

function coalesceText(seconds) {
  return seconds > 0 ? `Views of one card within ${seconds} s make one delivery` : 'No: one delivery per view';
}

function showFacts() {
  byId('detail-url').textContent = current.url;
  setChildren(
    byId('detail-summary'),
    el('span', { id: 'detail-status' }, statusBadge(current)),
    current.description ? el('span', { id: 'detail-description', class: 'description' }, current.description) : null,
  );
  setChildren(byId('detail-events'), ...current.events.map((type) => el('code', { class: 'event-name' }, type)));
  byId('detail-coalesce').textContent = coalesceText(current.coalesceSeconds);
  byId('detail-cards').textContent = cardsText(current.cardIds);
  byId('detail-rate').textContent = rateText(current.maxPerSecond);
  byId('detail-failures').textContent = String(current.consecutiveFailures);
  setChildren(byId('detail-next-attempt'), current.nextAttemptAt ? time(current.nextAttemptAt) : 'none due');
  setChildren(byId('detail-created'), time(current.createdAt));
}
