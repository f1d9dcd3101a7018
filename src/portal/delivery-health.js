import { api } from './api.js';
import { byId, el, setChildren } from './dom.js';
import { chartLegend, healthChart } from './health-chart.js';
import { errorText } from './messages.js';

/** The open endpoint's health at a glance, above its delivery log: its last 24 hours and its last 7 days. */

const WINDOWS = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
];

const health = {
  endpointId: null,
  /** Guards against answers for an endpoint or a load that is no longer the latest. */
  generation: 0,
};

export function initHealth() {
  setChildren(byId('health-legend'), chartLegend());
}

/** Starts the charts of another endpoint, empty until loadHealth. */
export function openHealth(endpointId) {
  health.endpointId = endpointId;
  health.generation++;
  setChildren(byId('health-charts'));
}

export function closeHealth() {
  health.endpointId = null;
  health.generation++;
}

/** Draws both windows anew (when the deliveries are shown, after a recover). */
export async function loadHealth() {
  const { endpointId } = health;
  const generation = ++health.generation;
  if (!endpointId) return;
  try {
    const windows = await Promise.all(WINDOWS.map(([window]) => api.health(endpointId, window)));
    if (generation !== health.generation) return;
    setChildren(
      byId('health-charts'),
      windows.map((data, i) => healthChart(data, WINDOWS[i][1])),
    );
  } catch (error) {
    // In the charts' place: the log below has its own messages.
    if (generation === health.generation) setChildren(byId('health-charts'), el('p', { class: 'alert', role: 'alert' }, errorText(error)));
  }
}
