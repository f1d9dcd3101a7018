import { api } from './api.js';
import { setChildren } from './dom.js';
import { sparkline } from './health-chart.js';

/**
 * The last 24 hours of each endpoint in the list, drawn as each answer comes. A few requests at a
 * time, so a long list does not spend the API's per-user budget in one burst.
 */

const AT_ONCE = 4;

/** Guards against a list drawn again while the previous one still loads. */
let generation = 0;

/** Fills each `cells.get(endpointId)`. */
export async function fillSparklines(cells) {
  const run = ++generation;
  const waiting = [...cells];
  const next = async () => {
    for (let entry = waiting.shift(); entry && run === generation; entry = waiting.shift()) {
      const [endpointId, cell] = entry;
      try {
        setChildren(cell, sparkline(await api.health(endpointId, '24h')));
      } catch (error) {
        setChildren(cell, '—');
        cell.title = error.message;
      }
    }
  };
  await Promise.all(Array.from({ length: AT_ONCE }, next));
}
