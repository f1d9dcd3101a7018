/** The smallest surface both stores offer: one raw query with positional parameters. */
export interface SqlRunner {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs a multi-statement script as ONE simple query (never split on `;`). */
  exec(script: string): Promise<void>;
}

/** What a store offers for statements that must commit together. */
export interface TransactionRunner {
  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when
   * it throws. Only `tx` may be used inside: on the embedded store anything else waits for the
   * transaction to end, which never comes.
   */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
}
