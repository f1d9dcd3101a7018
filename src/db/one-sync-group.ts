import pg from 'pg';
import type { GroupOutcome } from './group-commit.ts';

/** A statement of a group, with the name it is prepared under on every connection. */
export interface NamedStatement {
  name: string;
  text: string;
  params: unknown[];
}

/**
 * What this module uses of pg's connection and result, which pg's types leave out: the
 * protocol messages and the prepared-statement bookkeeping that pg-cursor and pg-query-stream
 * use the same way.
 */
interface ProtocolConnection {
  stream: { cork(): void; uncork(): void };
  parsedStatements: Record<string, string | undefined>;
  on(event: 'parseComplete', listener: () => void): void;
  off(event: 'parseComplete', listener: () => void): void;
  parse(query: { name: string; text: string }): void;
  bind(config: { statement: string; values: unknown[]; valueMapper: (value: unknown) => unknown }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(config: { portal: string }): void;
  sync(): void;
}

interface RowsOf {
  rows: unknown[];
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): unknown;
  addRow(row: unknown): void;
}

type TypeParsers = Pick<pg.PoolClient, 'getTypeParser'>;

interface ProtocolMessage {
  fields: unknown[];
}

/** Severities after which the server closes the session. */
const SESSION_ENDING = new Set(['FATAL', 'PANIC']);

const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils;

/**
 * Runs the statements as ONE transaction in one exchange: each statement's Bind, Describe and
 * Execute, then a single Sync. Until that Sync, PostgreSQL runs them in one implicit
 * transaction, committed at the Sync, or rolled back whole if any of them fails (the server
 * skips what follows an error). One answer comes back, flushed once, where BEGIN, the statements
 * and COMMIT each with their own Sync made the server answer and flush n + 2 times and run two
 * more statements: four one-row inserts a group cost PostgreSQL 205–219 µs of CPU a group
 * against 288–298, and this client 108–126 against 192–220 (bench/README.md, "One Sync a group").
 *
 * A statement not yet prepared on this connection is parsed in the same exchange; the
 * ParseComplete messages say how many were, so pg's record of the connection's prepared
 * statements stays right even when the group fails.
 *
 * Resolves with each statement's rows once committed, or `{ committed: false }` when the server
 * rolled the group back; rejects when the outcome is unknown (the connection broke).
 */
export function runAsOneSync(client: pg.PoolClient, statements: readonly NamedStatement[]): Promise<GroupOutcome> {
  return new Promise<GroupOutcome>((resolve, reject) => {
    client.query(new OneSyncGroup(statements, client, resolve, reject));
  });
}

class OneSyncGroup {
  readonly #statements: readonly NamedStatement[];
  /** Reads values as the client's own queries do (its type parsers). */
  readonly #types: TypeParsers;
  readonly #resolve: (outcome: GroupOutcome) => void;
  readonly #reject: (error: unknown) => void;
  readonly #rows: unknown[][] = [];
  #current: RowsOf | undefined;
  #settled = false;
  #connection: ProtocolConnection | undefined;
  /** Names parsed by this exchange, in the order sent; `#parsed` of them confirmed so far. */
  readonly #parsing: Array<{ name: string; text: string }> = [];
  #parsed = 0;
  readonly #onParsed = () => {
    this.#parsed += 1;
  };

  constructor(
    statements: readonly NamedStatement[],
    types: TypeParsers,
    resolve: (outcome: GroupOutcome) => void,
    reject: (error: unknown) => void,
  ) {
    this.#statements = statements;
    this.#types = types;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** pg's Submittable: called once the connection is free for this exchange. */
  submit(connection: pg.Connection): void {
    const con = connection as unknown as ProtocolConnection;
    this.#connection = con;
    con.stream.cork();
    try {
      for (const { name, text, params } of this.#statements) {
        if (con.parsedStatements[name] === undefined && !this.#parsing.some((parse) => parse.name === name)) {
          con.parse({ name, text });
          this.#parsing.push({ name, text });
        }
        con.bind({ statement: name, values: params, valueMapper: prepareValue });
        con.describe({ type: 'P', name: '' });
        con.execute({ portal: '' });
      }
      con.sync();
    } finally {
      con.stream.uncork();
    }
    if (this.#parsing.length > 0) con.on('parseComplete', this.#onParsed);
  }

  handleRowDescription(message: ProtocolMessage): void {
    const rows = new pg.Result('', this.#types as typeof pg.types) as unknown as RowsOf;
    rows.addFields(message.fields);
    this.#current = rows;
  }

  handleDataRow(message: ProtocolMessage): void {
    const rows = this.#current;
    rows?.addRow(rows.parseRow(message.fields));
  }

  handleCommandComplete(): void {
    this.#rows.push(this.#current?.rows ?? []);
    this.#current = undefined;
  }

  handleEmptyQuery(): void {
    this.handleCommandComplete();
  }

  /**
   * A server's error (it has a SQLSTATE) rolled the group back: the server skips the rest and
   * only answers the Sync, which pg then takes for the next query. Unknown instead, and so
   * rejected: an error without a SQLSTATE (the connection is gone), and one that ended the
   * session after every statement had run, when it may have come from the commit.
   */
  handleError(error: unknown): void {
    const fromServer = error instanceof pg.DatabaseError && typeof error.code === 'string';
    const atCommit = this.#rows.length === this.#statements.length;
    const rolledBack = fromServer && !(atCommit && SESSION_ENDING.has(error.severity ?? ''));
    this.#settle(() => (rolledBack ? this.#resolve({ committed: false }) : this.#reject(error)));
  }

  handleReadyForQuery(): void {
    // Every statement answered, then the Sync without an error: the implicit transaction committed.
    const committed = this.#rows.length === this.#statements.length;
    this.#settle(() => this.#resolve(committed ? { committed: true, rows: this.#rows } : { committed: false }));
  }

  #settle(answer: () => void): void {
    if (this.#settled) return;
    this.#settled = true;
    const con = this.#connection;
    if (con && this.#parsing.length > 0) {
      con.off('parseComplete', this.#onParsed);
      // The server parses in order and skips everything after an error: the first #parsed exist.
      for (const { name, text } of this.#parsing.slice(0, this.#parsed)) con.parsedStatements[name] = text;
    }
    answer();
  }
}
