/**
 * Building the page from API data. Endpoint URLs, descriptions, payloads and receivers' response
 * bodies are written by whoever controls an endpoint, so they only ever become text nodes: no
 * HTML is parsed here (the page's CSP enforces it with Trusted Types), and no API value becomes
 * an event handler, or an href other than an endpoint id encoded into the page's own `#/` address.
 */

/** The element with this id; a missing one is a bug in index.html, so it fails loudly. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`portal: no element #${id}`);
  return node;
}

/**
 * `el('td', { class: 'status' }, 'text', child, [more])`: attributes are set as attributes (never
 * properties such as innerHTML), strings and numbers become text, null and false are skipped, arrays (nested too) are spread.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  return setChildren(node, children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** `el` for SVG elements (charts drawn by the page itself), which live in their own namespace. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, String(value));
  }
  return setChildren(node, children);
}

/**
 * Replaces `node`'s children as `el` adds them. Never the DOM's `replaceChildren(a, null)`
 * directly: it writes a skipped child as the text "null".
 */
export function setChildren(node, ...children) {
  node.replaceChildren(
    ...children.flat(Infinity).flatMap((child) => {
      if (child === null || child === undefined || child === false) return [];
      return [child instanceof Node ? child : String(child)];
    }),
  );
  return node;
}

const sameYearFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const otherYearFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });

/**
 * A `<time>` for an ISO date from the API, or an em dash for null. Short enough for a table cell
 * (the year only when it is not this one); the full date, time zone and ISO form are its title.
 */
export function time(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  const format = date.getFullYear() === new Date().getFullYear() ? sameYearFormat : otherYearFormat;
  return el('time', { datetime: iso, title: `${fullFormat.format(date)} (${iso})` }, format.format(date));
}

/** Form fields as an object of strings. */
export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form)) if (typeof value === 'string') values[name] = value;
  return values;
}

/** The values of the checked boxes named `name` in `container`. */
export function checkedValues(container, name) {
  return [...container.querySelectorAll(`input[type="checkbox"][name="${name}"]:checked`)].map((box) => box.value);
}

/** While `work` runs, `button` is disabled and says it is busy (for assistive technology too). */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
