import { byId, el, setChildren, time } from './dom.js';
import { endpointHref } from './routes.js';
import { fillSparklines } from './sparklines.js';

/** The list of the user's endpoints: one row each, its URL the link that opens it. */

function statusText(endpoint) {
  if (endpoint.isActive) return 'Active';
  return endpoint.disabledReason ? `Disabled (${endpoint.disabledReason})` : 'Disabled';
}

export function statusBadge(endpoint) {
  return el('span', { class: endpoint.isActive ? 'badge ok' : 'badge off' }, statusText(endpoint));
}

export function renderEndpointList(endpoints) {
  byId('endpoints-empty').hidden = endpoints.length > 0;
  byId('endpoint-table').hidden = endpoints.length === 0;
  const sparklineCells = new Map(endpoints.map((endpoint) => [endpoint.id, el('td', { class: 'health-cell' }, '…')]));
  setChildren(
    byId('endpoint-list'),
    ...endpoints.map((endpoint) =>
      el(
        'tr',
        { 'data-endpoint-id': endpoint.id },
        el(
          'td',
          { class: 'endpoint-cell' },
          // A long URL is cut with an ellipsis here; the whole of it is the link's title and text (read by screen readers).
          el('a', { href: endpointHref(endpoint.id), class: 'url truncate', title: endpoint.url }, endpoint.url),
          endpoint.description ? el('span', { class: 'description truncate', title: endpoint.description }, endpoint.description) : null,
        ),
        el('td', {}, statusBadge(endpoint)),
        sparklineCells.get(endpoint.id),
        el(
          'td',
          {},
          endpoint.events.map((type) => el('code', { class: 'event-name' }, type)),
        ),
        el('td', { class: 'date' }, time(endpoint.createdAt)),
      ),
    ),
  );
  void fillSparklines(sparklineCells);
}
