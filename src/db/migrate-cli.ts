// `pnpm db:migrate`: applies pending migrations to the configured store, and nothing else.
import { loadConfig } from '../config.ts';
import { openDatabase } from './database.ts';

const config = loadConfig();
const db = await openDatabase(config);
try {
  const applied = await db.migrate();
  console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date');
} finally {
  await db.close();
}
