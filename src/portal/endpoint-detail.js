import { api } from './api.js';
import { busy, byId, checkedValues, formValues, setChildren, time } from './dom.js';
import { closeLog, loadLog, openLog } from './delivery-log.js';
import { setCheckedEvents, statusText } from './endpoint-list.js';
import { announce, reportError } from './messages.js';
import { showSecret } from './secret.js';
import { clearSelfTest, renderSelfTest } from './self-test.js';

/**
 * The open endpoint: its facts, the edit and rotate forms, enable/disable, test event, self-test,
 * delivery log and delete. The section's elements stay in place and only their text changes, so
 * the focus stays on the button that was pressed.
 */

let current = null;
let changed = () => {};
let deleted = () => {};

export const openEndpointId = () => current?.id ?? null;

/** `onChanged(endpoint)` after every change the list should show; `onDeleted(id)` after a delete. */
export function initEndpointDetail({ onChanged, onDeleted }) {
  changed = onChanged;
  deleted = onDeleted;
  byId('toggle-active').addEventListener('click', (event) => act(event.currentTarget, toggleActive));
  byId('send-test').addEventListener('click', (event) => act(event.currentTarget, sendTest));
  byId('run-self-test').addEventListener('click', (event) => act(event.currentTarget, runSelfTest));
  byId('edit-form').addEventListener('submit', (event) => submit(event, saveEdits));
  byId('rotate-form').addEventListener('submit', (event) => submit(event, rotate));
  byId('delete-endpoint').addEventListener('click', () => askToDelete(true));
  byId('delete-no').addEventListener('click', () => {
    askToDelete(false);
    byId('delete-endpoint').focus();
  });
  byId('delete-yes').addEventListener('click', (event) => act(event.currentTarget, remove));
}

/** Shows `endpoint` (moving the focus to it unless `keepFocus`) and starts its delivery log. */
export function openEndpoint(endpoint, { keepFocus = false } = {}) {
  const switching = current?.id !== endpoint.id;
  current = endpoint;
  showFacts(endpoint);
  if (switching) {
    byId('edit-url').value = endpoint.url;
    byId('edit-description').value = endpoint.description ?? '';
    setCheckedEvents(byId('edit-events'), endpoint.events);
    clearSelfTest();
    askToDelete(false);
    openLog(endpoint.id);
  }
  byId('endpoint-detail').hidden = false;
  byId('nothing-open').hidden = true;
  if (!keepFocus) byId('detail-heading').focus();
}

export function closeEndpoint() {
  current = null;
  closeLog();
  clearSelfTest();
  byId('endpoint-detail').hidden = true;
  byId('nothing-open').hidden = false;
}

function showFacts(endpoint) {
  byId('detail-url').textContent = endpoint.url;
  byId('detail-status').textContent = statusText(endpoint);
  byId('detail-description').textContent = endpoint.description ?? '—';
  byId('detail-events').textContent = endpoint.events.join(', ');
  byId('detail-failures').textContent = String(endpoint.consecutiveFailures);
  setChildren(byId('detail-previous-secret'), time(endpoint.previousSecretExpiresAt));
  setChildren(byId('detail-created'), time(endpoint.createdAt));
  byId('toggle-active').textContent = endpoint.isActive ? 'Disable endpoint' : 'Enable endpoint';
}

function updated(endpoint) {
  current = endpoint;
  showFacts(endpoint);
  changed(endpoint);
}

async function act(button, action) {
  if (!current) return;
  await busy(button, async () => {
    try {
      await action(current);
    } catch (error) {
      reportError(error);
    }
  });
}

async function submit(event, action) {
  event.preventDefault();
  const form = event.currentTarget;
  await act(form.querySelector('button[type="submit"]'), (endpoint) => action(endpoint, form));
}

async function toggleActive(endpoint) {
  updated(await api.updateEndpoint(endpoint.id, { isActive: !endpoint.isActive }));
  announce(current.isActive ? 'Endpoint enabled: it receives events again.' : 'Endpoint disabled: its pending deliveries are cancelled.');
  await loadLog();
}

async function sendTest(endpoint) {
  const { deliveryId } = await api.sendTest(endpoint.id);
  announce(`Test event queued as delivery ${deliveryId}.`);
  await loadLog();
}

async function runSelfTest(endpoint) {
  clearSelfTest();
  announce('Running the self-test…');
  const report = await api.verifyReceiver(endpoint.id);
  renderSelfTest(report);
  announce(report.verdict === 'ok' ? 'Self-test passed.' : 'Self-test finished: your receiver needs attention.');
}

async function saveEdits(endpoint, form) {
  const values = formValues(form);
  updated(
    await api.updateEndpoint(endpoint.id, {
      url: values.url,
      description: values.description ?? '',
      events: checkedValues(byId('edit-events'), 'events'),
    }),
  );
  announce('Changes saved.');
}

async function rotate(endpoint, form) {
  const rotated = await api.rotateSecret(endpoint.id, Number(formValues(form).gracePeriodSeconds));
  showSecret({ url: endpoint.url, ...rotated }, { rotated: true, returnFocusTo: byId('rotate-heading') });
  updated(await api.getEndpoint(endpoint.id));
  announce('New secret created. Copy it now: it is shown only once.');
}

function askToDelete(asking) {
  byId('delete-confirm').hidden = !asking;
  byId('delete-endpoint').hidden = asking;
  if (current) byId('delete-question').textContent = `Delete ${current.url} for good?`;
  if (asking) byId('delete-no').focus();
}

async function remove(endpoint) {
  await api.deleteEndpoint(endpoint.id);
  closeEndpoint();
  announce(`Endpoint ${endpoint.url} deleted.`);
  deleted(endpoint.id);
}
