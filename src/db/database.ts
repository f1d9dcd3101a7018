import { createHash } from 'node:crypto';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
import { GroupCommit, type GroupOutcome, type GroupStatement } from './group-commit.ts';
import { runAsOneSync } from './one-sync-group.ts';
import { applyMigrations } from './migrate.ts';
import { DEFAULT_POOL_SIZE } from './pool-size.ts';
import type { SqlRunner, TransactionRunner } from './sql-runner.ts';

export type { PrismaClient };

/** One schema, two stores: PostgreSQL through `pg`, or the embedded PGlite store. */
export interface Database extends TransactionRunner {
  kind: 'postgres' | 'embedded';
  prisma: PrismaClient;
  /** Raw SQL for what Prisma cannot express well (claims with SKIP LOCKED, batch updates). */
  sql: SqlRunner;
  /**
   * Raw SQL whose autocommit statements may share a transaction and its commit with concurrent
   * ones (group-commit.ts): for the hot statements that are safe to commit together.
   */
  grouped: SqlRunner;
  /** Runs pending migrations (see migrate.ts). */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; `?schema=name` selects a schema (used by tests for isolation). */
  databaseUrl: string | undefined;
  /** Embedded store folder, or `memory`. */
  dataDir: string;
  /** Embedded only: start from this image (see migratedEmbeddedImage) instead of an empty store. */
  embeddedImage?: Blob;
  /** PostgreSQL only: connections kept at most (DEFAULT_POOL_SIZE). */
  poolSize?: number;
  /** Told when an idle pooled connection breaks (server restart, network); the next query reconnects. */
  onConnectionError?: (error: Error) => void;
}

/** A connection attempt that hangs (partition, firewall) fails after this long instead of blocking the pool. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long an idle pooled connection is kept (see openPostgres). */
const POOL_IDLE_TIMEOUT_MS = 5 * 60_000;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? DEFAULT_POOL_SIZE, options.onConnectionError)
    : openEmbedded(options.dataDir, options.embeddedImage);
}

/** Splits Prisma's `?schema=` convention off the URL; `pg` itself does not understand it. */
export function splitSchema(databaseUrl: string): { connectionString: string; schema: string | undefined } {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  return { connectionString: url.toString(), schema };
}

async function openPostgres(databaseUrl: string, poolSize: number, onConnectionError?: (error: Error) => void): Promise<Database> {
  const { connectionString, schema } = splitSchema(databaseUrl);
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A new connection is a new server backend: its catalog caches start cold and every prepared
    // statement is planned again (the view's ~6 ms a plan, five times before its plan is cached).
    // pg's default of 10 s idle closed them between bursts, so each burst paid that again.
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    // TCP keep-alive lets the OS notice a peer that vanished without closing the connection.
    keepAlive: true,
    options: sessionOptions(schema),
  });
  // An idle client's error (e.g. the server restarting) must not crash the process: it is
  // reported, and the next query reconnects or reports its own failure to whoever made it.
  pool.on('error', (error) => onConnectionError?.(error));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, schema ? { schema } : undefined) });
  const sql = pgRunner(pool);
  const grouped = new GroupCommit({
    alone: sql,
    runGroup: (statements) => runGroup(pool, statements),
    maxGroups: groupsAtOnce(poolSize),
    maxStatements: MAX_GROUPED_STATEMENTS,
  });
  return {
    kind: 'postgres',
    prisma,
    sql,
    grouped,
    async transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
      return withCheckedOutClient(pool, async (client, markBroken) => {
        // Pipeline mode (a documented pg client option, set here per checkout) sends BEGIN together
        // with the first statement instead of waiting a round trip for it: a transaction then costs
        // one round trip more than its statements (the COMMIT), which the hot view path relies on.
        setPipeline(client, true);
        try {
          const begun = client.query('BEGIN');
          // Awaited after `fn`; observed now so a failure is not reported as unhandled meanwhile.
          begun.catch(() => {});
          try {
            const result = await fn(pgRunner(client));
            await begun;
            await client.query('COMMIT');
            return result;
          } catch (error) {
            // A connection that could not even roll back is not given to the next caller.
            await client.query('ROLLBACK').catch(markBroken);
            throw error;
          }
        } finally {
          setPipeline(client, false);
        }
      });
    },
    async migrate() {
      // The advisory lock is per session, so the whole run must use one connection.
      return withCheckedOutClient(pool, (client) => applyMigrations(pgRunner(client)));
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

/**
 * Settings of every pooled session.
 * - `search_path`: raw SQL must see the same tables as Prisma, which is told the schema separately.
 * - `enable_seqscan = off`: every statement here reaches its rows by a key, an index or a ctid. A
 *   prepared statement keeps the plan made when it was first run, and a queue that was empty
 *   then (a fresh service, a quiet night) makes a sequential scan look cheaper than a ctid: a
 *   claim planned on an empty queue and then run against 50,000 rows took 28.7 ms instead of
 *   about 2 (bench/README.md, "What is left"). The setting only prices scans out where another
 *   path exists; a statement with none still scans.
 */
function sessionOptions(schema: string | undefined): string {
  const options = ['-c enable_seqscan=off'];
  if (schema) options.push(`-c search_path="${schema.replaceAll('"', '""')}"`);
  return options.join(' ');
}

/** Statements one group commit takes at most (group-commit.ts). */
const MAX_GROUPED_STATEMENTS = 8;

/**
 * Group commits running at once: a quarter of the pool, which is sized at about four connections
 * per core of the database server (pool-size.ts), so one group per core, and the rest of the pool
 * free for everything else (the worker's claims and results). One running group keeps a core
 * busy; more split the waiting views into smaller groups, each a commit and a WAL flush, on
 * backends contending for the same cores. On a 2-core server, 2 instead of 4 cost PostgreSQL about
 * a fifth less CPU per delivery, with views waiting a little longer for a free group at moderate
 * load (bench/README.md, "Groups at once").
 */
function groupsAtOnce(poolSize: number): number {
  return Math.max(1, Math.floor(poolSize / 4));
}

/**
 * The statements as one transaction in one round trip (one-sync-group.ts). A group the server
 * rolled back is reported as such; one whose outcome is unknown (the connection broke) throws,
 * and the connection is not used again.
 */
async function runGroup(pool: pg.Pool, statements: readonly GroupStatement[]): Promise<GroupOutcome> {
  return withCheckedOutClient(pool, async (client, markBroken) => {
    const named = statements.map(({ text, params }) => ({ name: preparedName(text), text, params }));
    return runAsOneSync(client, named).catch((error: unknown) => {
      markBroken(error instanceof Error ? error : new Error(String(error)));
      throw error;
    });
  });
}

function setPipeline(client: pg.PoolClient, on: boolean): void {
  (client as { pipeline: boolean }).pipeline = on;
}

async function openEmbedded(dataDir: string, image: Blob | undefined): Promise<Database> {
  const pglite = await PGlite.create({
    ...(dataDir !== 'memory' && { dataDir: `${dataDir}/pglite` }),
    ...(image && { loadDataDir: image }),
  });
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  const sql = pgliteRunner(pglite);
  return {
    kind: 'embedded',
    prisma,
    sql,
    // One connection, every statement in turn: a group would only make each wait for the others.
    grouped: sql,
    transaction: <T>(fn: (tx: SqlRunner) => Promise<T>) => pglite.transaction(async (tx) => fn(pgliteRunner(tx))),
    migrate: () => applyMigrations(sql),
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}

/**
 * An embedded store with every migration applied, as an image to open stores from: creating an
 * empty one runs initdb inside the WASM engine (2.5–4.5 s here), opening an image about 1 s. The
 * tests open hundreds of stores.
 */
export async function migratedEmbeddedImage(): Promise<Blob> {
  const pglite = await PGlite.create();
  try {
    await applyMigrations(pgliteRunner(pglite));
    return await pglite.dumpDataDir('none');
  } finally {
    await pglite.close();
  }
}

/** A pool (any free connection per statement) or one checked-out connection, as a SqlRunner. */
function pgRunner(queryable: pg.Pool | pg.PoolClient): SqlRunner {
  return {
    async query<T>(text: string, params?: unknown[]) {
      return (await queryable.query({ name: preparedName(text), text, values: params })).rows as T[];
    },
    async exec(script: string) {
      await queryable.query(script);
    },
  };
}

/**
 * Every raw statement runs as a named prepared statement: each connection parses it once and
 * PostgreSQL may reuse its plan, where an unnamed statement is parsed and planned at every call
 * (about 60 % of the hot view and fan-out statements' server time). The texts are a fixed set of
 * templates (values are parameters), so a connection prepares a bounded number of them.
 */
const preparedNames = new Map<string, string>();
function preparedName(text: string): string {
  let name = preparedNames.get(text);
  if (name === undefined) {
    name = `q_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    preparedNames.set(text, name);
  }
  return name;
}

/** The embedded store, or one of its transactions, as a SqlRunner. */
function pgliteRunner(queryable: PGlite | Transaction): SqlRunner {
  return {
    async query<T>(text: string, params?: unknown[]) {
      return (await queryable.query<T>(text, params)).rows;
    },
    async exec(script: string) {
      await queryable.exec(script);
    },
  };
}

/**
 * Runs `fn` on a connection of its own. A checked-out client has no error listener of the
 * pool's, so a socket error (the server restarting) would be an uncaught exception: here it is
 * the failure of the query in progress, and a connection that broke is not given to the next caller.
 */
async function withCheckedOutClient<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, markBroken: (error: Error) => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const markBroken = (error: Error): void => {
    broken ??= error;
  };
  client.on('error', markBroken);
  try {
    return await fn(client, markBroken);
  } finally {
    client.removeListener('error', markBroken);
    client.release(broken);
  }
}
