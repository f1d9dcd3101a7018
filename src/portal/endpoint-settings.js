import { api } from './api.js';
import { byId, checkedValues, formValues } from './dom.js';
import { confirmAction } from './confirm.js';
import { renderCardChoices } from './card-choices.js';
import { MAX_PER_SECOND_UNREADABLE, onSubmit, optionalNumberField, secondsField } from './form-errors.js';
import { act, announce } from './messages.js';

/** The Settings section: the edit form, pausing and resuming deliveries, and deleting the endpoint. */

function setCheckedEvents(container, events) {
  for (const box of container.querySelectorAll('input[type="checkbox"][name="events"]')) box.checked = events.includes(box.value);
}

/** The form shows `endpoint` as stored (its current state, not its defaults). */
export function fillSettingsForm(endpoint) {
  byId('edit-url').value = endpoint.url;
  byId('edit-description').value = endpoint.description ?? '';
  byId('edit-coalesce').value = String(endpoint.coalesceSeconds);
  byId('edit-max-per-second').value = endpoint.maxPerSecond === null ? '' : String(endpoint.maxPerSecond);
  setCheckedEvents(byId('edit-events'), endpoint.events);
  renderCardChoices(byId('edit-cards'), 'edit-card', endpoint.cardIds);
}

export function showActiveState(endpoint) {
  const button = byId('toggle-active');
  button.textContent = endpoint.isActive ? 'Disable endpoint…' : 'Enable endpoint';
  button.className = endpoint.isActive ? 'danger' : '';
  byId('active-explanation').textContent = endpoint.isActive
    ? 'Disabling stops all deliveries to this endpoint and cancels the pending ones, until you enable it again.'
    : 'Deliveries are stopped. Enabling sends new events again and resets the count of failed deliveries; cancelled ones stay cancelled (redeliver them from the log).';
}

export function initSettings(endpoint, onDeleted) {
  onSubmit(byId('edit-form'), async (form) => {
    const coalesceSeconds = secondsField(form, 'coalesceSeconds');
    if (coalesceSeconds === null) return;
    const maxPerSecond = optionalNumberField(form, 'maxPerSecond', MAX_PER_SECOND_UNREADABLE);
    if (maxPerSecond === undefined) return;
    const values = formValues(form);
    const { id } = endpoint.current();
    await api.updateEndpoint(id, {
      url: values.url,
      description: values.description ?? '',
      events: checkedValues(byId('edit-events'), 'events'),
      coalesceSeconds,
      cardIds: checkedValues(byId('edit-cards'), 'cardIds'),
      maxPerSecond,
    });
    await endpoint.reload();
    fillSettingsForm(endpoint.current());
    announce('Changes saved.', form);
  });

  byId('toggle-active').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    const { id, url, isActive } = endpoint.current();
    if (
      isActive &&
      !(await confirmAction({
        title: 'Disable this endpoint?',
        message: `${url} gets no more deliveries, and its pending ones are cancelled, until you enable it again.`,
        confirmLabel: 'Disable endpoint',
      }))
    ) {
      return;
    }
    await act(button, async () => {
      await api.updateEndpoint(id, { isActive: !isActive });
      await endpoint.reload();
      announce(
        isActive ? 'Endpoint disabled: its pending deliveries are cancelled.' : 'Endpoint enabled: it receives events again.',
        button,
      );
    });
  });

  byId('delete-endpoint').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    const deleting = endpoint.current();
    const confirmed = await confirmAction({
      title: 'Delete this endpoint?',
      message: `${deleting.url} and its delivery log are deleted for good; its pending deliveries are never sent.`,
      confirmLabel: 'Delete endpoint',
    });
    if (!confirmed) return;
    await act(button, async () => {
      await api.deleteEndpoint(deleting.id);
      onDeleted(deleting);
    });
  });
}
