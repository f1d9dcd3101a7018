import { api } from './api.js';
import { byId } from './dom.js';
import { act, announce } from './messages.js';
import { clearSelfTest, renderSelfTest } from './self-test.js';
import { sendTestEvent, testEventExample } from './test-event.js';

/** The Test section: a test event through the delivery log, and the receiver self-test. */

let catalogue = () => [];

/** `eventTypes()` is the API's catalogue, whose examples the test event's is dated like. */
export function initTestTab(endpoint, eventTypes) {
  catalogue = eventTypes;
  byId('send-test').addEventListener('click', (event) => sendTestEvent(endpoint.current().id, event.currentTarget));
  byId('run-self-test').addEventListener('click', (event) => {
    const button = event.currentTarget;
    return act(button, async () => {
      clearSelfTest();
      announce('Running the self-test…', button);
      const report = await api.verifyReceiver(endpoint.current().id);
      renderSelfTest(report);
      announce(report.verdict === 'ok' ? 'Self-test passed.' : 'Self-test finished: your receiver needs attention.', button);
    });
  });
}

export function fillTestTab(detail) {
  byId('test-example').textContent = JSON.stringify(testEventExample(catalogue(), detail.id), null, 2);
  clearSelfTest();
}
