import { busy, el } from './dom.js';
import { errorText, reportError } from './messages.js';

/**
 * An API refusal shown on the form that caused it: each message next to its field (marked
 * invalid and described by it, and the first one focused, so the view moves there), and what
 * belongs to no field in the form's own feedback box.
 */

/** Codes whose message is about one field although the error body names none. */
const FIELD_OF_CODE = { URL_NOT_ALLOWED: 'url', ENDPOINT_URL_EXISTS: 'url', EMAIL_TAKEN: 'email', USERNAME_TAKEN: 'username' };

/** `body.events.0` → `events`: the API names fields by their path in the request. */
function fieldName(path) {
  return typeof path === 'string' ? (path.replace(/^(body|querystring)\./, '').split('.')[0] ?? '') : '';
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The error's messages by field name; `''` collects those of no field. */
function messagesByField(error) {
  const fields = new Map();
  const add = (name, message) => fields.set(name, [...(fields.get(name) ?? []), sentence(message)]);
  const details = Array.isArray(error?.details) ? error.details : [];
  for (const detail of details) {
    if (detail && typeof detail.message === 'string' && detail.message.trim()) add(fieldName(detail.field), detail.message.trim());
  }
  if (fields.size === 0) add(FIELD_OF_CODE[error?.code] ?? '', errorText(error));
  return fields;
}

/** The control (or the fieldset of a group of checkboxes) that shows `name`'s errors. */
function controlOf(form, name) {
  if (!name) return null;
  const group = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (group) return group;
  const control = form.elements.namedItem(name);
  return control instanceof HTMLElement && control.id ? control : null;
}

function markInvalid(control, messages) {
  const errorId = `${control.id}-error`;
  const message = el('p', { id: errorId, class: 'field-error' }, el('span', { class: 'visually-hidden' }, 'Error: '), messages.join(' '));
  if (control instanceof HTMLFieldSetElement) {
    control.querySelector('legend').after(message);
  } else {
    // After the field's own hint, when it has one right below it, so the hint stays with the field.
    const next = control.nextElementSibling;
    (next && next.classList.contains('hint') ? next : control).after(message);
    control.setAttribute('aria-invalid', 'true');
  }
  control.dataset.describedBy = control.getAttribute('aria-describedby') ?? '';
  control.setAttribute('aria-describedby', [errorId, control.dataset.describedBy].filter(Boolean).join(' '));
}

function clearFormErrors(form) {
  for (const message of form.querySelectorAll('.field-error')) message.remove();
  for (const control of form.querySelectorAll('[data-described-by]')) {
    if (control.dataset.describedBy) control.setAttribute('aria-describedby', control.dataset.describedBy);
    else control.removeAttribute('aria-describedby');
    control.removeAttribute('data-described-by');
    control.removeAttribute('aria-invalid');
  }
}

/** Shows `error` on `form`. */
function showFormError(form, error) {
  clearFormErrors(form);
  const unplaced = [];
  let first = null;
  for (const [name, messages] of messagesByField(error)) {
    const control = controlOf(form, name);
    if (!control) {
      unplaced.push(...messages.map((message) => (name ? `${name}: ${message}` : message)));
      continue;
    }
    markInvalid(control, messages);
    first ??= control;
  }
  if (unplaced.length > 0) reportError(new Error(unplaced.join(' ')), form);
  else reportError(new Error('Check the highlighted fields.'), form);
  if (first) (first instanceof HTMLFieldSetElement ? first.querySelector('input') : first)?.focus();
}

/** A check made before asking the API, shown as the API's own would be. */
function showFieldError(form, name, message) {
  showFormError(form, { code: 'VALIDATION_ERROR', message, details: [{ field: name, message }] });
}

/**
 * Runs `action(form)` on submit, the submit button busy meanwhile, and shows what the API refused
 * on the form. `confirm`, when given, asks first (before the button is busy, so the focus can go
 * back to it when the question is closed).
 */
export function onSubmit(form, action, { confirm } = {}) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (confirm && !(await confirm())) return;
    await busy(form.querySelector('button[type="submit"]'), async () => {
      clearFormErrors(form);
      try {
        await action(form);
      } catch (error) {
        showFormError(form, error);
      }
    });
  });
}

/**
 * The whole number of seconds in the number field `name`, or null after saying why not. The range is left
 * to the API, whose message then shows in the same place; a number field the browser cannot read
 * (or an empty one) never reaches it, so that one is said here, in the API's words.
 */
export function secondsField(form, name) {
  const input = form.elements.namedItem(name);
  if (input.validity.badInput || input.value.trim() === '') {
    showFieldError(form, name, 'must be a whole number of seconds');
    return null;
  }
  return Number(input.value);
}

/**
 * The local date and time of the field `name` as an ISO instant; undefined when it is left empty
 * and may be (`optional`); null after saying why not, as the API would, at the field.
 */
export function dateTimeField(form, name, { optional = false } = {}) {
  const input = form.elements.namedItem(name);
  if (optional && input.value === '' && !input.validity.badInput) return undefined;
  const at = new Date(input.value);
  if (input.validity.badInput || Number.isNaN(at.getTime())) {
    showFieldError(form, name, 'must be a date and time');
    return null;
  }
  return at.toISOString();
}

/** The API's words for a rate it cannot read. */
export const MAX_PER_SECOND_UNREADABLE = 'must be a whole number of attempts a second';

/**
 * The number in the optional number field `name`: null when it is empty, undefined after saying
 * (as `secondsField` does) that the browser cannot read it. Its range is the API's to refuse.
 */
export function optionalNumberField(form, name, message) {
  const input = form.elements.namedItem(name);
  if (input.validity.badInput) {
    showFieldError(form, name, message);
    return undefined;
  }
  return input.value.trim() === '' ? null : Number(input.value);
}
