/**
 * Where a window's WAL went, by relation and record type: `pg_waldump` over the window's LSN
 * range, keeping the records of the scenario's own relations (its schema: other clients of the
 * same server, such as test runs on other schemas, write WAL too), with relfilenodes named from
 * `pg_class`, and their total. Records of no relation (commits, for one) cannot be told apart by
 * schema and are listed as all of the database's. Only where the server's data directory is
 * readable here (the bench prints nothing otherwise); `--wal-breakdown` asks for it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';

export interface WalMark {
  lsn: string;
  databaseOid: number;
}

export async function markWal(client: pg.Client): Promise<WalMark> {
  const { rows } = await client.query<{ lsn: string; oid: number }>(
    'SELECT pg_current_wal_insert_lsn()::text AS lsn, (SELECT oid FROM pg_database WHERE datname = current_database())::int AS oid',
  );
  return { lsn: rows[0]!.lsn, databaseOid: rows[0]!.oid };
}

interface Line {
  what: string;
  records: number;
  bytes: number;
}

/** Lines "relation (record type): records/delivery, bytes/delivery", largest first; undefined when pg_waldump cannot read the WAL. */
export async function walBreakdown(client: pg.Client, from: WalMark, deliveries: number): Promise<string[] | undefined> {
  const { rows } = await client.query<{ dir: string; bin: string }>(
    "SELECT current_setting('data_directory') AS dir, current_setting('server_version_num') AS bin",
  );
  const walDir = path.join(rows[0]!.dir, 'pg_wal');
  const major = Math.floor(Number(rows[0]!.bin) / 10_000);
  const waldump = `/usr/lib/postgresql/${major}/bin/pg_waldump`;
  if (!existsSync(waldump)) return undefined;
  // Only what is flushed can be read from the files.
  const to = (await client.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn')).rows[0]!;
  let output: string;
  try {
    output = execFileSync(waldump, ['-p', walDir, '-s', from.lsn, '-e', to.lsn], { encoding: 'utf8', maxBuffer: 1 << 30 });
  } catch {
    return undefined;
  }
  // The client's search_path is the scenario's schema (lib/stores.ts).
  const names = new Map<string, string>();
  const rels = await client.query<{ node: string; name: string }>(
    'SELECT relfilenode::text AS node, relname AS name FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relfilenode <> 0',
  );
  for (const r of rels.rows) names.set(r.node, r.name);
  const lines = new Map<string, Line>();
  const ours: Line = { what: "the scenario's relations", records: 0, bytes: 0 };
  for (const record of output.split('\n')) {
    const rmgr = /^rmgr: (\w+)\s+len \(rec\/tot\):\s+\d+\/\s*(\d+),.*desc: (\w+)/.exec(record);
    if (!rmgr) continue;
    const rel = /rel \d+\/(\d+)\/(\d+)/.exec(record);
    if (rel && (Number(rel[1]) !== from.databaseOid || !names.has(rel[2]!))) continue;
    const relation = rel ? names.get(rel[2]!)! : '(no relation)';
    const what = `${relation} ${rmgr[1]}/${rmgr[3]}`;
    const line = lines.get(what) ?? { what, records: 0, bytes: 0 };
    line.records += 1;
    line.bytes += Number(rmgr[2]);
    lines.set(what, line);
    if (rel) {
      ours.records += 1;
      ours.bytes += Number(rmgr[2]);
    }
  }
  const perDelivery = (l: Line) => `${l.what}: ${(l.records / deliveries).toFixed(2)} records, ${Math.round(l.bytes / deliveries)} B`;
  return [
    perDelivery(ours),
    ...[...lines.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .filter((l) => l.records / deliveries >= 0.01)
      .map(perDelivery),
  ];
}
