/**
 * Global setup: on the embedded store, one image of a migrated store for the whole run, in a
 * file that every test process opens its stores from (test/helpers/store.ts). Creating a store
 * runs initdb inside the WASM engine, 2.5–4.5 s here; opening the image takes about 1 s, and the
 * suite opens a store for nearly every app it builds.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migratedEmbeddedImage } from '../../src/db/database.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated embedded store's image file; empty on PostgreSQL. */
    embeddedImageFile: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.DATABASE_URL) {
    project.provide('embeddedImageFile', '');
    return async () => {};
  }
  const folder = await mkdtemp(path.join(tmpdir(), 'devcard-test-image-'));
  const file = path.join(folder, 'migrated.tar');
  await writeFile(file, Buffer.from(await (await migratedEmbeddedImage()).arrayBuffer()));
  project.provide('embeddedImageFile', file);
  return () => rm(folder, { recursive: true, force: true });
}
