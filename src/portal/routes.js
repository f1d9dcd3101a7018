/**
 * The portal's views, addressed by the page's `#/` fragment so that the back button, a reload and
 * a bookmark keep the view: `#/endpoints`, `#/events`, `#/endpoints/<id>/<tab>`.
 */

export const ENDPOINT_TABS = ['deliveries', 'settings', 'secret', 'test'];

export function parseRoute(hash) {
  let parts;
  try {
    parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch {
    return { view: 'endpoints' };
  }
  if (parts[0] === 'events') return { view: 'events' };
  if (parts[0] === 'endpoints' && parts[1]) {
    return { view: 'endpoint', id: parts[1], tab: ENDPOINT_TABS.includes(parts[2]) ? parts[2] : ENDPOINT_TABS[0] };
  }
  return { view: 'endpoints' };
}

export function endpointHref(id, tab = ENDPOINT_TABS[0]) {
  return `#/endpoints/${encodeURIComponent(id)}/${tab}`;
}
