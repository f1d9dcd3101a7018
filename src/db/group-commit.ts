import type { SqlRunner } from './sql-runner.ts';

/**
 * Group commit for autocommit statements that arrive together (the public pages' view
 * statements): while `maxGroups` groups are running, statements wait, and the next group takes
 * every statement waiting, up to `maxStatements`, as ONE transaction sent in one round trip —
 * its statements pipelined and a single commit (one WAL flush) for all of them. On a 2-core
 * server four views a transaction cost PostgreSQL about a quarter less CPU each than one
 * (bench/README.md, "Group commit"). A statement that finds a free group runs alone, as before,
 * so an idle service adds no wait.
 *
 * A statement answers only once its group has committed: the caller sees exactly what an
 * autocommit statement would have given it. A group that rolls back — any of its statements
 * failed, or the commit did (a deadlock, a serialization failure) — committed nothing, so each
 * of its statements is run again alone and gets its own outcome: one statement's failure never
 * becomes another's. Only a group whose outcome is unknown (the connection broke) fails all of
 * its statements, as an autocommit statement fails when its connection breaks.
 *
 * Only statements that are safe to commit together belong here: each must be complete on its
 * own (no statement reads what another of the group wrote in order to decide), and must hold
 * its row locks for a short while only, since a group keeps them until its commit.
 */

export interface GroupStatement {
  text: string;
  params: unknown[];
}

/** What running a group as one transaction gave: each statement's rows, or why nothing was committed. */
export type GroupOutcome =
  | { committed: true; rows: unknown[][] }
  /** Rolled back by the server: nothing of the group was written, so each statement may run again. */
  | { committed: false };

export interface GroupCommitOptions {
  /** Runs one statement on its own (autocommit): a group of one, and each statement of a group that rolled back. */
  alone: SqlRunner;
  /** Runs the statements as one transaction; throws only when the outcome is unknown (see GroupOutcome). */
  runGroup: (statements: readonly GroupStatement[]) => Promise<GroupOutcome>;
  /** Groups running at once (connections they may hold); statements wait beyond it. */
  maxGroups: number;
  /** Statements in one group at most: its locks are held until its commit. */
  maxStatements: number;
}

interface Waiting extends GroupStatement {
  resolve: (rows: unknown[]) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit implements SqlRunner {
  readonly #o: GroupCommitOptions;
  readonly #waiting: Waiting[] = [];
  #running = 0;

  constructor(options: GroupCommitOptions) {
    if (options.maxGroups < 1 || options.maxStatements < 1) throw new RangeError('a group commit needs room for one statement');
    this.#o = options;
  }

  query<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    return new Promise<T[]>((resolve, reject) => {
      this.#waiting.push({ text, params, resolve: resolve as (rows: unknown[]) => void, reject });
      this.#startGroups();
    });
  }

  /** Scripts are not grouped: they run as they would alone. */
  exec(script: string): Promise<void> {
    return this.#o.alone.exec(script);
  }

  #startGroups(): void {
    while (this.#running < this.#o.maxGroups && this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, this.#o.maxStatements);
      this.#running += 1;
      void this.#run(group).finally(() => {
        this.#running -= 1;
        this.#startGroups();
      });
    }
  }

  async #run(group: Waiting[]): Promise<void> {
    if (group.length === 1) return this.#runAlone(group[0] as Waiting);
    // Every group takes its row locks in the same order, so that two groups cannot wait for each
    // other (a deadlock would cost both a second, then a run alone each): statements of one text
    // in the order of their first parameter, the row their page or card is looked up by.
    group.sort(lockOrder);
    let outcome: GroupOutcome;
    try {
      outcome = await this.#o.runGroup(group);
    } catch (error) {
      for (const statement of group) statement.reject(error);
      return;
    }
    if (outcome.committed) {
      group.forEach((statement, i) => statement.resolve(outcome.rows[i] ?? []));
      return;
    }
    await Promise.all(group.map((statement) => this.#runAlone(statement)));
  }

  async #runAlone(statement: Waiting): Promise<void> {
    try {
      statement.resolve(await this.#o.alone.query(statement.text, statement.params));
    } catch (error) {
      statement.reject(error);
    }
  }
}

function lockOrder(a: GroupStatement, b: GroupStatement): number {
  if (a.text !== b.text) return a.text < b.text ? -1 : 1;
  const [x, y] = [String(a.params[0]), String(b.params[0])];
  return x < y ? -1 : x > y ? 1 : 0;
}
