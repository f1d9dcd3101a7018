import { api, onSessionLost, session } from './api.js';
import { initConfirm } from './confirm.js';
import { byId, checkedValues, formValues } from './dom.js';
import { initDeliveryLog, setLogEventTypes } from './delivery-log.js';
import { closeEndpoint, initEndpointDetail, openEndpoint, openEndpointId, showTab } from './endpoint-detail.js';
import { renderEndpointList } from './endpoint-list.js';
import { renderEventChoices, renderEventHelp } from './event-help.js';
import { renderCardChoices, setCards } from './card-choices.js';
import { MAX_PER_SECOND_UNREADABLE, onSubmit, optionalNumberField, secondsField } from './form-errors.js';
import { announce, clearMessages, initFeedback, reportError } from './messages.js';
import { endpointHref, parseRoute } from './routes.js';
import { showSecret } from './secret.js';
import { TEST_EVENT_TYPE } from './test-event.js';

/** The portal's entry: signing in and out, and which view the page's address shows. */

const VIEWS = { endpoints: 'list-view', events: 'events-view', endpoint: 'endpoint-view' };
const VIEW_HEADINGS = { endpoints: 'list-heading', events: 'events-heading', endpoint: 'detail-heading' };

let eventTypes = [];
let endpoints = [];
/** The view on screen, so that a change of section only moves the focus within the endpoint. */
let shown = null;
/** What the next view says once shown: a message, and the secret of the endpoint just created. */
let pending = { message: null, secret: null };
/** Guards against a slow route finishing after a newer one. */
let routing = 0;

function showSignIn(message) {
  closeEndpoint();
  endpoints = [];
  shown = null;
  for (const id of [...Object.values(VIEWS), 'session-bar', 'site-nav']) byId(id).hidden = true;
  byId('sign-in-view').hidden = false;
  clearMessages();
  if (message) announce(message);
  byId('sign-in-heading').focus();
}

/** Goes to `hash`, saying `message` there. */
function navigate(hash, message = null) {
  pending.message = message;
  if (location.hash === hash) void route({ focus: true });
  else location.hash = hash;
}

function showView(name) {
  for (const [view, id] of Object.entries(VIEWS)) byId(id).hidden = view !== name;
  for (const link of document.querySelectorAll('[data-nav]')) {
    const current = link.dataset.nav === name || (name === 'endpoint' && link.dataset.nav === 'endpoints');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function route({ focus }) {
  const target = parseRoute(location.hash);
  const run = ++routing;
  const { message, secret } = pending;
  pending = { message: null, secret: null };
  clearMessages();
  try {
    if (target.view === 'endpoint') {
      const sameEndpoint = shown === 'endpoint' && openEndpointId() === target.id;
      if (!sameEndpoint) {
        const detail = await api.getEndpoint(target.id);
        if (run !== routing) return;
        openEndpoint(detail);
      }
      showView('endpoint');
      showTab(target.tab, { focus: focus && sameEndpoint });
      if (focus && !sameEndpoint) byId('detail-heading').focus();
      if (secret?.id === target.id) showSecret(secret, { returnFocusTo: byId('secret-tab-heading') });
    } else {
      closeEndpoint();
      // Both views show the endpoints: the list, or where a test event can go.
      endpoints = await api.listEndpoints();
      if (run !== routing) return;
      if (target.view === 'endpoints') renderEndpointList(endpoints);
      else renderEventHelp(eventTypes, endpoints);
      showView(target.view);
      if (focus) byId(VIEW_HEADINGS[target.view]).focus();
    }
    shown = target.view;
    if (message) announce(message);
  } catch (error) {
    if (run !== routing || !session.token()) return;
    if (error.status === 404 && target.view === 'endpoint') navigate('#/endpoints', 'That endpoint does not exist (any more).');
    else reportError(error);
  }
}

async function enterPortal({ focus }) {
  byId('sign-in-view').hidden = true;
  byId('signed-in-as').textContent = session.username();
  byId('session-bar').hidden = false;
  byId('site-nav').hidden = false;
  [eventTypes] = await Promise.all([api.eventTypes(), api.listCards().then(setCards)]);
  const types = eventTypes.map((entry) => entry.type);
  renderEventChoices(byId('create-events'), eventTypes, 'create-event', types);
  renderCardChoices(byId('create-cards'), 'create-card', []);
  renderEventChoices(byId('edit-events'), eventTypes, 'edit-event', []);
  setLogEventTypes([...types, TEST_EVENT_TYPE]);
  await route({ focus });
}

function signedIn(user, token, form, message) {
  session.start(token, user.username);
  form.reset();
  return enterPortal({ focus: true }).then(() => announce(message));
}

async function createEndpoint(form) {
  const coalesceSeconds = secondsField(form, 'coalesceSeconds');
  if (coalesceSeconds === null) return;
  const maxPerSecond = optionalNumberField(form, 'maxPerSecond', MAX_PER_SECOND_UNREADABLE);
  if (maxPerSecond === undefined) return;
  const { url, description } = formValues(form);
  const created = await api.createEndpoint({
    url,
    description,
    events: checkedValues(byId('create-events'), 'events'),
    coalesceSeconds,
    cardIds: checkedValues(byId('create-cards'), 'cardIds'),
    maxPerSecond,
  });
  form.reset();
  pending.secret = { id: created.id, url: created.url, secret: created.secret };
  navigate(endpointHref(created.id, 'secret'), 'Endpoint added. Copy its signing secret now: it is shown only once.');
}

function start() {
  initFeedback();
  initConfirm();
  onSessionLost(() => {
    session.end();
    showSignIn('Your session has ended. Sign in again.');
  });
  initDeliveryLog();
  initEndpointDetail({
    onChanged: (endpoint) => {
      endpoints = endpoints.map((entry) => (entry.id === endpoint.id ? endpoint : entry));
    },
    onDeleted: (endpoint) => navigate('#/endpoints', `Endpoint ${endpoint.url} deleted.`),
    eventTypes: () => eventTypes,
  });
  onSubmit(byId('sign-in-form'), async (form) => {
    const { login, password } = formValues(form);
    const { user, token } = await api.login(login ?? '', password ?? '');
    await signedIn(user, token, form, `Signed in as ${user.username}.`);
  });
  onSubmit(byId('register-form'), async (form) => {
    const { email, username, password } = formValues(form);
    const { user, token } = await api.register({ email, username, password });
    await signedIn(user, token, form, `Account created. Signed in as ${user.username}.`);
  });
  onSubmit(byId('create-form'), createEndpoint);
  byId('sign-out').addEventListener('click', () => {
    session.end();
    showSignIn('Signed out.');
  });
  window.addEventListener('hashchange', () => {
    if (session.token()) void route({ focus: true });
  });

  if (!session.token()) {
    byId('sign-in-view').hidden = false;
    return;
  }
  enterPortal({ focus: false }).catch((error) => {
    if (session.token()) reportError(error);
  });
}

start();
