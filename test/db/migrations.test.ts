import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { applyMigrations, MigrationChecksumError, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { createTestStore, type TestStore } from '../helpers/store.ts';

/**
 * The migrations must build exactly the tables the Prisma schema describes. Prisma 7's generated
 * client no longer exports the DMMF (`Prisma.dmmf`) and `@prisma/internals` is not a dependency,
 * so the expected shape is read from prisma/schema.prisma itself — just models, fields, @map,
 * @@map, optionality and uniqueness, which is all this comparison needs.
 */

const SCHEMA_FILE = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));

interface ExpectedColumn {
  column: string;
  type: string;
  nullable: boolean;
}
interface ExpectedTable {
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
};
const NATIVE_TYPES: Record<string, string> = { Uuid: 'uuid', Timestamptz: 'timestamp with time zone' };

function parseSchema(text: string): ExpectedTable[] {
  const blocks = [...text.matchAll(/^(model|enum)\s+(\w+)\s*\{([\s\S]*?)^\}/gm)];
  const enums = new Set(blocks.filter((b) => b[1] === 'enum').map((b) => b[2]!));
  const models = blocks.filter((b) => b[1] === 'model');
  const modelNames = new Set(models.map((b) => b[2]!));

  return models.map(([, , name, body]) => {
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
    for (const match of body!.matchAll(/@@unique\(\[([^\]]+)\]/g)) {
      uniques.push(match[1]!.split(',').map((f) => columnOf.get(f.trim())!));
    }
    return { table, columns: columns.sort((a, b) => a.column.localeCompare(b.column)), uniques };
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

  it('creates exactly the tables and columns of prisma/schema.prisma', async () => {
    const expected = parseSchema(await readFile(SCHEMA_FILE, 'utf8'));
    expect(expected.map((t) => t.table)).toContain('users');

    const rows = await db.sql.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name <> '_prisma_migrations'`,
    );
    const actualTables = [...new Set(rows.map((r) => r.table_name))].sort();
    expect(actualTables).toEqual(expected.map((t) => t.table).sort());

    for (const table of expected) {
      const actual = rows
        .filter((r) => r.table_name === table.table)
        .map((r) => ({ column: r.column_name, type: r.data_type, nullable: r.is_nullable === 'YES' }))
        .sort((a, b) => a.column.localeCompare(b.column));
      expect(actual, table.table).toEqual(table.columns);
    }
  });

  it('creates the unique constraints the schema declares', async () => {
    const expected = parseSchema(await readFile(SCHEMA_FILE, 'utf8'));
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
