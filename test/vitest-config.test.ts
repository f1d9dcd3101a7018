import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MOCKING_FILES } from '../vitest.config.ts';

/** Every test file under test/, as a path from the repository root. */
async function testFiles(): Promise<string[]> {
  const entries = await readdir('test', { recursive: true });
  return entries.filter((entry) => entry.endsWith('.test.ts')).map((entry) => path.posix.join('test', entry.split(path.sep).join('/')));
}

describe('vitest.config.ts', () => {
  // The suite's processes keep their modules from file to file: a vi.mock there would replace a
  // module for whichever files run after it in that process.
  it('runs every file that uses vi.mock in a process of its own', async () => {
    const mocking: string[] = [];
    for (const file of await testFiles()) {
      if (file === 'test/vitest-config.test.ts') continue;
      if ((await readFile(file, 'utf8')).includes('vi.mock(')) mocking.push(file);
    }
    expect(mocking.sort()).toEqual([...MOCKING_FILES].sort());
  });
});
