/**
 * Whether an error means the store is briefly unavailable (restarting, unreachable, shutting
 * down, out of connections) rather than that the request or the code is wrong: the caller
 * should retry later (503), not be told the service broke (500).
 *
 * The same outage reaches us in several shapes: a raw `pg` error (socket errno, SQLSTATE, or a
 * bare message), a PGlite error, or one of these wrapped by Prisma (a `P1xxx` code, or a
 * driver adapter error under `meta.driverAdapterError` whose `cause` has a `kind` and the
 * original SQLSTATE as `originalCode`). The chain is walked through `cause` and that wrapper.
 */

/** Socket failures on the way to the database server. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * SQLSTATEs of an unavailable server: class 08 (connection exception) is matched by prefix;
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or in
 * recovery), 53300 too_many_connections.
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/**
 * Prisma's codes for the same: P1001 cannot reach the server, P1002 timed out reaching it,
 * P1008 operation timed out, P1017 the server closed the connection, P2024 timed out waiting
 * for a pooled connection, P2037 too many connections.
 */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);

/** Prisma driver adapter error kinds (`cause.kind`) that say the same. */
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

/**
 * Messages of errors that carry no code: `pg` when a connection drops mid-query or a pool
 * connect times out or the pool has been ended (closing), and PGlite once closed.
 */
const MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|not queryable|Cannot use a pool after calling end|PGlite is clos(ed|ing)/;

/** How deep to follow `cause` links: Prisma wraps at most twice; a cycle must not loop. */
const MAX_DEPTH = 6;

type ErrorLike = {
  code?: unknown;
  originalCode?: unknown;
  kind?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
};

function isUnavailableNode(node: ErrorLike): boolean {
  for (const code of [node.code, node.originalCode]) {
    if (typeof code !== 'string') continue;
    if (SOCKET_CODES.has(code) || SQLSTATES.has(code) || PRISMA_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  if (typeof node.kind === 'string' && ADAPTER_KINDS.has(node.kind)) return true;
  return typeof node.message === 'string' && MESSAGES.test(node.message);
}

export function isDatabaseUnavailable(error: unknown): boolean {
  const pending: Array<{ node: unknown; depth: number }> = [{ node: error, depth: 0 }];
  while (pending.length > 0) {
    const { node, depth } = pending.pop()!;
    if (typeof node !== 'object' || node === null || depth > MAX_DEPTH) continue;
    const candidate = node as ErrorLike;
    if (isUnavailableNode(candidate)) return true;
    pending.push({ node: candidate.cause, depth: depth + 1 }, { node: candidate.meta?.driverAdapterError, depth: depth + 1 });
  }
  return false;
}
