import { createHash, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { applyMigrations, MigrationChecksumError, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';

/**
 * The migrations must build exactly the tables and views the Prisma schema describes. Prisma 7's
 * generated client no longer exports the DMMF (`Prisma.dmmf`) and `@prisma/internals` is not a
 * dependency, so the expected shape is read from prisma/schema.prisma itself — just models,
 * views, fields, @map, @@map, optionality and uniqueness, which is all this comparison needs.
 */

const SCHEMA_FILE = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));

interface ExpectedColumn {
  column: string;
  type: string;
  nullable: boolean;
}
interface ExpectedTable {
  /** A `model` is a table; a `view` block a view of the database. */
  kind: 'model' | 'view';
  table: string;
  columns: ExpectedColumn[];
  uniques: string[][];
}

const SCALAR_TYPES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Boolean: 'boolean',
  DateTime: 'timestamp without time zone',
  Json: 'jsonb',
  Float: 'double precision',
  Bytes: 'bytea',
};
const NATIVE_TYPES: Record<string, string> = { Uuid: 'uuid', Timestamptz: 'timestamp with time zone' };

function parseSchema(text: string): ExpectedTable[] {
  const blocks = [...text.matchAll(/^(model|view|enum)\s+(\w+)\s*\{([\s\S]*?)^\}/gm)];
  const enums = new Set(blocks.filter((b) => b[1] === 'enum').map((b) => b[2]!));
  const models = blocks.filter((b) => b[1] === 'model' || b[1] === 'view');
  const modelNames = new Set(models.map((b) => b[2]!));

  return models.map(([, kind, name, body]) => {
    const lines = body!
      .split('\n')
      .map((l) => l.replace(/\/\/.*$/, '').trim())
      .filter(Boolean);
    const table = /@@map\("([^"]+)"\)/.exec(body!)?.[1] ?? name!;
    const columnOf = new Map<string, string>();
    const columns: ExpectedColumn[] = [];
    const uniques: string[][] = [];
    for (const line of lines) {
      if (line.startsWith('@@')) continue;
      const [field, rawType] = line.split(/\s+/) as [string, string];
      const baseType = rawType.replace(/[?[\]]/g, '');
      if (modelNames.has(baseType)) continue; // a relation, not a column
      const column = /@map\("([^"]+)"\)/.exec(line)?.[1] ?? field;
      const native = /@db\.(\w+)/.exec(line)?.[1];
      let type = native ? NATIVE_TYPES[native]! : enums.has(baseType) ? 'USER-DEFINED' : SCALAR_TYPES[baseType]!;
      if (rawType.endsWith('[]')) type = 'ARRAY';
      columnOf.set(field, column);
      // Prisma's own DDL leaves scalar-list columns (`String[]`) nullable: lists cannot be optional in
      // the schema, so it does not add NOT NULL.
      columns.push({ column, type, nullable: rawType.endsWith('?') || rawType.endsWith('[]') });
      if (/@unique\b/.test(line) || /@id\b/.test(line)) uniques.push([column]);
    }
    for (const match of body!.matchAll(/@@(?:unique|id)\(\[([^\]]+)\]/g)) {
      uniques.push(match[1]!.split(',').map((f) => columnOf.get(f.trim())!));
    }
    return { kind: kind as 'model' | 'view', table, columns: columns.sort((a, b) => a.column.localeCompare(b.column)), uniques };
  });
}

describe('migrations', () => {
  let store: TestStore;
  let db: Database;
  let applied: string[];
  let migrationNames: string[];

  beforeAll(async () => {
    store = await createTestStore();
    db = await store.open();
    applied = await db.migrate();
    migrationNames = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  });
  afterAll(async () => {
    await db.close();
    await store.drop();
  });

  it('applies every migration, in order, on a fresh store', () => {
    expect(migrationNames.length).toBeGreaterThan(0);
    expect(applied).toEqual(migrationNames);
  });

  /** Tables and views of the store, by name; a partitioned table once (its partitions are its storage, not tables of the schema). */
  async function relations(): Promise<Map<string, 'model' | 'view'>> {
    const rows = await db.sql.query<{ name: string; relkind: string }>(
      `SELECT c.relname::text AS name, c.relkind::text AS relkind FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
          AND c.relname <> '_prisma_migrations'`,
    );
    return new Map(rows.map((r) => [r.name, r.relkind === 'v' ? 'view' : 'model']));
  }

  it('creates exactly the tables, views and columns of prisma/schema.prisma', async () => {
    const expected = parseSchema(await readFile(SCHEMA_FILE, 'utf8'));
    expect(expected.map((t) => t.table)).toContain('users');
    expect(expected.filter((t) => t.kind === 'view').map((t) => t.table)).toContain('webhook_deliveries');

    const actualRelations = await relations();
    expect([...actualRelations].sort()).toEqual(expected.map((t) => [t.table, t.kind]).sort());

    const rows = await db.sql.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
      [[...actualRelations.keys()]],
    );
    for (const table of expected) {
      // PostgreSQL reports every column of a view as nullable (it does not carry NOT NULL through
      // a query), so a view's columns are compared by name and type only.
      const shape = ({ column, type, nullable }: ExpectedColumn) => (table.kind === 'view' ? { column, type } : { column, type, nullable });
      const actual = rows
        .filter((r) => r.table_name === table.table)
        .map((r) => shape({ column: r.column_name, type: r.data_type, nullable: r.is_nullable === 'YES' }))
        .sort((a, b) => a.column.localeCompare(b.column));
      expect(actual, table.table).toEqual(table.columns.map(shape));
    }
  });

  it('creates the unique constraints the schema declares', async () => {
    // A view has no constraints: its @unique and @@unique only tell Prisma how to address its rows.
    const expected = parseSchema(await readFile(SCHEMA_FILE, 'utf8')).filter((t) => t.kind === 'model');
    const rows = await db.sql.query<{ table_name: string; columns: string[] }>(
      `SELECT t.relname::text AS table_name, array_agg(a.attname::text ORDER BY k.ord) AS columns
         FROM pg_index i
         JOIN pg_class t ON t.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE n.nspname = current_schema() AND i.indisunique
        GROUP BY i.indexrelid, t.relname`,
    );
    for (const table of expected) {
      const actual = rows.filter((r) => r.table_name === table.table).map((r) => r.columns.join(','));
      for (const unique of table.uniques) expect(actual, table.table).toContain(unique.join(','));
    }
  });

  it('records each migration as `prisma migrate deploy` does', async () => {
    const rows = await db.sql.query<{
      migration_name: string;
      checksum: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
      applied_steps_count: number;
    }>('SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(migrationNames);
    for (const row of rows) {
      const sql = await readFile(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(row.finished_at).not.toBeNull();
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it('applies nothing the second time', async () => {
    expect(await db.migrate()).toEqual([]);
    const rows = await db.sql.query<{ migration_name: string }>('SELECT migration_name FROM _prisma_migrations');
    expect(rows).toHaveLength(migrationNames.length);
  });

  it('refuses to run when an applied migration file was modified', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'devcard-migrations-'));
    try {
      await cp(MIGRATIONS_DIR, dir, { recursive: true });
      await appendFile(path.join(dir, migrationNames[0]!, 'migration.sql'), '\n-- edited after release\n');
      await expect(applyMigrations(db.sql, dir)).rejects.toBeInstanceOf(MigrationChecksumError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to run when a recorded checksum does not match', async () => {
    const [first] = migrationNames;
    const [{ checksum }] = (await db.sql.query<{ checksum: string }>('SELECT checksum FROM _prisma_migrations WHERE migration_name = $1', [
      first,
    ])) as [{ checksum: string }];
    await db.sql.query('UPDATE _prisma_migrations SET checksum = $1 WHERE migration_name = $2', ['0'.repeat(64), first]);
    try {
      await expect(db.migrate()).rejects.toThrow(/checksum mismatch/);
    } finally {
      await db.sql.query('UPDATE _prisma_migrations SET checksum = $1 WHERE migration_name = $2', [checksum, first]);
    }
    expect(await db.migrate()).toEqual([]);
  });
});

/** The last migration before a delivery was split into queue, log and event rows (issue 13). */
const BEFORE_QUEUE_AND_LOG = '20261130054000_endpoint_revision';

interface LegacyAttempt {
  attemptNumber: number;
  responseCode: number | null;
  responseBody: string | null;
  error: string | null;
  signedWith: string[];
  signatureTimestamp: bigint | null;
}
interface LegacyDelivery {
  what: string;
  id: string;
  eventId: string;
  status: 'pending' | 'success' | 'failed';
  attempts: number;
  payload: object;
  responseCode: number | null;
  errorMessage: string | null;
  nextRetryAt: Date | null;
  coalesceKey: string | null;
  deliveredAt: Date | null;
  attemptRows: LegacyAttempt[];
}

describe('migration 20261130090000_delivery_queue_and_log, on deliveries made before it', () => {
  let store: TestStore;
  let db: Database;
  let dir: string;

  beforeAll(async () => {
    store = await createTestStore();
    db = await store.open();
    dir = await mkdtemp(path.join(tmpdir(), 'devcard-migrations-'));
  });
  afterAll(async () => {
    await db?.close();
    await store?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const T0 = Date.parse('2026-11-20T10:00:00.000Z');
  const ATTEMPT_MS = 7;
  const at = (seconds: number) => new Date(T0 + seconds * 1000);
  const attempt = (
    attemptNumber: number,
    responseCode: number | null,
    responseBody: string | null,
    error: string | null,
  ): LegacyAttempt => ({
    attemptNumber,
    responseCode,
    responseBody,
    error,
    signedWith: ['0123abcd'],
    signatureTimestamp: BigInt(T0 / 1000 + attemptNumber),
  });
  function legacy(what: string, fields: Partial<LegacyDelivery> & Pick<LegacyDelivery, 'status' | 'attempts'>): LegacyDelivery {
    const eventId = randomUUID();
    return {
      what,
      id: randomUUID(),
      eventId,
      payload: {
        id: eventId,
        type: 'card.viewed',
        timestamp: at(0).toISOString(),
        data: { userId: randomUUID(), cardId: null, viewer: null, source: 'link' },
      },
      responseCode: null,
      errorMessage: null,
      nextRetryAt: null,
      coalesceKey: null,
      deliveredAt: null,
      attemptRows: [],
      ...fields,
    };
  }

  it('keeps every delivery with its id, status, attempts, attempt rows and payload', async () => {
    for (const name of (await readdir(MIGRATIONS_DIR)).filter((name) => name <= BEFORE_QUEUE_AND_LOG)) {
      await cp(path.join(MIGRATIONS_DIR, name), path.join(dir, name), { recursive: true });
    }
    expect((await applyMigrations(db.sql, dir)).at(-1)).toBe(BEFORE_QUEUE_AND_LOG);

    const [user] = await db.sql.query<{ id: string }>(
      `INSERT INTO users (email, username, display_name, password_hash) VALUES ('legacy@example.com', 'legacy', 'legacy', 'x') RETURNING id`,
    );
    const [endpoint] = await db.sql.query<{ id: string }>(
      `INSERT INTO webhook_endpoints (user_id, url, secret_encrypted, events, coalesce_seconds)
       VALUES ($1::uuid, 'https://example.com/legacy', 'sealed', ARRAY['card.viewed'], 600) RETURNING id`,
      [user!.id],
    );
    const deliveries = [
      legacy('pending after one failed attempt', {
        status: 'pending',
        attempts: 1,
        responseCode: 500,
        errorMessage: 'HTTP 500',
        nextRetryAt: at(60),
        attemptRows: [attempt(1, 500, 'down', 'HTTP 500')],
      }),
      legacy('a success at the first attempt', {
        status: 'success',
        attempts: 1,
        responseCode: 200,
        // When its attempt ended: the log keeps no time of its own beside a final attempt's.
        deliveredAt: new Date(at(1).getTime() + ATTEMPT_MS),
        attemptRows: [attempt(1, 200, 'ok', null)],
      }),
      legacy('failed after two attempts', {
        status: 'failed',
        attempts: 2,
        responseCode: 503,
        errorMessage: 'HTTP 503',
        attemptRows: [attempt(1, null, null, 'connect ECONNREFUSED'), attempt(2, 503, 'busy', 'HTTP 503')],
      }),
      legacy('an open coalesced view', {
        status: 'pending',
        attempts: 0,
        nextRetryAt: at(600),
        coalesceKey: 'card.viewed:profile',
        payload: {
          id: randomUUID(),
          type: 'card.viewed',
          timestamp: at(0).toISOString(),
          data: {
            userId: user!.id,
            cardId: null,
            viewer: null,
            source: 'link',
            count: 3,
            firstViewedAt: at(0),
            lastViewedAt: at(9),
            viewers: [],
          },
        },
      }),
    ];
    for (const d of deliveries) {
      await db.sql.query(
        `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, response_code, next_retry_at,
                                         coalesce_key, error_message, delivered_at, created_at, updated_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, 'card.viewed', $4::jsonb, $5::webhook_delivery_status, $6::int, $7::int, $8::timestamptz,
                 $9::text, $10::text, $11::timestamptz, $12::timestamptz, $13::timestamptz)`,
        [
          d.id,
          endpoint!.id,
          d.eventId,
          JSON.stringify(d.payload),
          d.status,
          d.attempts,
          d.responseCode,
          d.nextRetryAt?.toISOString() ?? null,
          d.coalesceKey,
          d.errorMessage,
          d.deliveredAt?.toISOString() ?? null,
          at(0).toISOString(),
          (d.deliveredAt ?? at(d.attempts)).toISOString(),
        ],
      );
      for (const a of d.attemptRows) {
        await db.sql.query(
          `INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, response_code, response_body, error,
                                                  signature_timestamp, body_bytes, body_sha256, signed_with)
           VALUES ($1::uuid, $2::int, $3::timestamptz, $4::int, $5::int, $6::text, $7::text, $8::bigint, 120, $9::text, $10::text[])`,
          [
            d.id,
            a.attemptNumber,
            at(a.attemptNumber).toISOString(),
            ATTEMPT_MS,
            a.responseCode,
            a.responseBody,
            a.error,
            a.signatureTimestamp?.toString() ?? null,
            'ab'.repeat(32),
            a.signedWith,
          ],
        );
      }
    }

    const rest = await applyMigrations(db.sql);
    expect(rest[0]).toBe('20261130090000_delivery_queue_and_log');

    const migrated = await db.prisma.webhookDelivery.findMany({
      where: { endpointId: endpoint!.id },
      include: { attemptsLog: { orderBy: { attemptNumber: 'asc' } } },
    });
    expect(migrated.map((d) => d.id).sort()).toEqual(deliveries.map((d) => d.id).sort());
    for (const d of deliveries) {
      const row = migrated.find((m) => m.id === d.id)!;
      expect(row, d.what).toMatchObject({
        eventId: d.eventId,
        status: d.status,
        attempts: d.attempts,
        payload: JSON.parse(JSON.stringify(d.payload)),
        responseCode: d.responseCode,
        errorMessage: d.errorMessage,
        nextRetryAt: d.nextRetryAt,
        claimToken: null,
        coalesceKey: d.coalesceKey,
        deliveredAt: d.deliveredAt,
      });
      expect(
        row.attemptsLog.map(({ attemptNumber, responseCode, responseBody, error, signedWith, signatureTimestamp }) => ({
          attemptNumber,
          responseCode,
          responseBody,
          error,
          signedWith,
          signatureTimestamp,
        })),
        d.what,
      ).toEqual(d.attemptRows);
      expect(
        row.attemptsLog.map((a) => [a.startedAt, a.durationMs, a.bodyBytes, a.bodySha256]),
        d.what,
      ).toEqual(d.attemptRows.map((a) => [at(a.attemptNumber), ATTEMPT_MS, 120, 'ab'.repeat(32)]));
    }
  });
});
