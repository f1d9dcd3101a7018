import { api, onSessionLost, session } from './api.js';
import { busy, byId, checkedValues, formValues } from './dom.js';
import { initDeliveryLog, setLogEventTypes } from './delivery-log.js';
import { closeEndpoint, initEndpointDetail, openEndpoint, openEndpointId } from './endpoint-detail.js';
import { renderEndpointList, renderEventChoices } from './endpoint-list.js';
import { announce, clearMessages, reportError } from './messages.js';
import { hideSecret, initSecretPanel, showSecret } from './secret.js';

/** The portal's entry: signing in and out, the endpoint list and the create form. */

/** Sent only by the test action; the catalogue lists the types one can subscribe to. */
const TEST_EVENT_TYPE = 'webhook.test';

let endpoints = [];

function showSignIn(message) {
  closeEndpoint();
  hideSecret();
  endpoints = [];
  byId('portal-view').hidden = true;
  byId('session-bar').hidden = true;
  byId('sign-in-view').hidden = false;
  if (message) announce(message);
  byId('sign-in-heading').focus();
}

async function enterPortal() {
  byId('sign-in-view').hidden = true;
  byId('signed-in-as').textContent = session.username();
  byId('session-bar').hidden = false;
  byId('portal-view').hidden = false;
  const [eventTypes, list] = await Promise.all([api.eventTypes(), api.listEndpoints()]);
  const types = eventTypes.map((entry) => entry.type);
  renderEventChoices(byId('create-events'), eventTypes, 'create-event', types);
  renderEventChoices(byId('edit-events'), eventTypes, 'edit-event', []);
  setLogEventTypes([...types, TEST_EVENT_TYPE]);
  showEndpoints(list);
  byId('endpoints-heading').focus();
}

function showEndpoints(list) {
  endpoints = list;
  renderEndpointList(endpoints, openEndpointId(), manage);
}

async function manage(id) {
  try {
    openEndpoint(await api.getEndpoint(id));
    showEndpoints(endpoints);
  } catch (error) {
    reportError(error);
  }
}

/** After a change in the open endpoint: the list shows it too. */
function endpointChanged(endpoint) {
  showEndpoints(endpoints.map((entry) => (entry.id === endpoint.id ? { ...entry, ...endpoint } : entry)));
}

function endpointDeleted(id) {
  showEndpoints(endpoints.filter((entry) => entry.id !== id));
  byId('endpoints-heading').focus();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const { login, password } = formValues(form);
  await busy(form.querySelector('button[type="submit"]'), async () => {
    try {
      const { user, token } = await api.login(login ?? '', password ?? '');
      session.start(token, user.username);
      form.reset();
      clearMessages();
      await enterPortal();
      announce(`Signed in as ${user.username}.`);
    } catch (error) {
      reportError(error);
    }
  });
}

async function register(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const { email, username, password } = formValues(form);
  await busy(form.querySelector('button[type="submit"]'), async () => {
    try {
      const { user, token } = await api.register({ email, username, password });
      session.start(token, user.username);
      form.reset();
      clearMessages();
      await enterPortal();
      announce(`Account created. Signed in as ${user.username}.`);
    } catch (error) {
      reportError(error);
    }
  });
}

async function createEndpoint(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const { url, description } = formValues(form);
  await busy(form.querySelector('button[type="submit"]'), async () => {
    try {
      const created = await api.createEndpoint({ url, description, events: checkedValues(byId('create-events'), 'events') });
      const { secret, ...endpoint } = created;
      form.reset();
      openEndpoint(endpoint, { keepFocus: true });
      showEndpoints([...endpoints, endpoint]);
      showSecret({ url: endpoint.url, secret }, { returnFocusTo: byId('detail-heading') });
      announce('Endpoint added. Copy its signing secret now: it is shown only once.');
    } catch (error) {
      reportError(error);
    }
  });
}

function signOut() {
  session.end();
  showSignIn('Signed out.');
}

function start() {
  onSessionLost(() => {
    session.end();
    showSignIn('Your session has ended. Sign in again.');
  });
  initSecretPanel();
  initDeliveryLog();
  initEndpointDetail({ onChanged: endpointChanged, onDeleted: endpointDeleted });
  byId('sign-in-form').addEventListener('submit', signIn);
  byId('register-form').addEventListener('submit', register);
  byId('create-form').addEventListener('submit', createEndpoint);
  byId('sign-out').addEventListener('click', signOut);

  if (!session.token()) {
    byId('sign-in-view').hidden = false;
    return;
  }
  enterPortal().catch((error) => {
    if (session.token()) reportError(error);
  });
}

start();
