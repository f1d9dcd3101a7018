/** Channel for LISTEN/NOTIFY between an API process and worker processes (PostgreSQL). */
export const DUE_CHANNEL = 'webhook_deliveries_due';
/**
 * Channel on which every change of an endpoint's url, secrets or isActive (and its deletion) is
 * announced, payload the endpoint id, in the transaction that makes it: workers in other
 * processes stop using what they hold of it (delivery/endpoint-configs.ts).
 */
export const ENDPOINT_CHANGED_CHANNEL = 'webhook_endpoint_changed';
