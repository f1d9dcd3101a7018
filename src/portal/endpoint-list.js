import { byId, el, setChildren } from './dom.js';

/** The list of the user's endpoints and the event checkboxes of the create and edit forms. */

export function statusText(endpoint) {
  if (endpoint.isActive) return 'Active';
  return endpoint.disabledReason ? `Disabled (${endpoint.disabledReason})` : 'Disabled';
}

/** One row per endpoint; `onManage(id)` opens it. The selected one is marked for assistive technology too. */
export function renderEndpointList(endpoints, selectedId, onManage) {
  byId('endpoints-empty').hidden = endpoints.length > 0;
  setChildren(
    byId('endpoint-list'),
    ...endpoints.map((endpoint) => {
      const selected = endpoint.id === selectedId;
      const manage = el(
        'button',
        { type: 'button', class: 'secondary', 'aria-current': selected ? 'true' : null },
        selected ? 'Open' : 'Manage',
        el('span', { class: 'visually-hidden' }, ` ${endpoint.url}`),
      );
      manage.addEventListener('click', () => onManage(endpoint.id));
      return el(
        'li',
        { class: selected ? 'endpoint selected' : 'endpoint', 'data-endpoint-id': endpoint.id },
        el(
          'div',
          { class: 'endpoint-summary' },
          el(
            'p',
            { class: 'endpoint-title' },
            el('span', { class: 'url' }, endpoint.url),
            ' ',
            el('span', { class: endpoint.isActive ? 'badge ok' : 'badge off' }, statusText(endpoint)),
          ),
          endpoint.description ? el('p', { class: 'description' }, endpoint.description) : null,
          el('p', { class: 'hint' }, `Events: ${endpoint.events.join(', ')}`),
        ),
        manage,
      );
    }),
  );
}

/** Checkboxes named `events`, one per subscribable type, each described by the catalogue's sentence. */
export function renderEventChoices(container, eventTypes, idPrefix, checked) {
  setChildren(
    container,
    ...eventTypes.map(({ type, description }) => {
      const id = `${idPrefix}-${type.replace(/[^a-z0-9]/gi, '-')}`;
      return el(
        'div',
        { class: 'event-choice' },
        el('input', {
          type: 'checkbox',
          id,
          name: 'events',
          value: type,
          checked: checked.includes(type),
          'aria-describedby': `${id}-hint`,
        }),
        el('label', { for: id }, el('code', {}, type)),
        el('p', { id: `${id}-hint`, class: 'hint' }, description),
      );
    }),
  );
}

/** Ticks exactly the boxes of `events` (the form's current state, not its defaults). */
export function setCheckedEvents(container, events) {
  for (const box of container.querySelectorAll('input[type="checkbox"][name="events"]')) box.checked = events.includes(box.value);
}
