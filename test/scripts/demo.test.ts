import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('pnpm demo', () => {
  it('runs the whole loop: every delivery arrives with a verified signature, a retry, the self-test, exit 0', async () => {
    // PORT=0: nothing can answer there, so the demo starts a service of its own rather than reuse one.
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', DEMO_TIMEOUT_MS: '180000' };
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];

    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/Starting the service on http:\/\/127\.0\.0\.1:\d+ \(embedded store/);
    const uuid = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
    for (const event of ['webhook.test', 'card.viewed', 'contact.saved']) {
      expect(stdout).toMatch(new RegExp(`← ${event.replace('.', '\\.')} +delivery ${uuid}  attempt 1  signature verified`));
    }
    // The receiver fails contact.saved once: the retry comes back with the same delivery id.
    const retried = new RegExp(`← contact\\.saved delivery (${uuid})  attempt 2  signature verified → 204`).exec(stdout);
    expect(retried).not.toBeNull();
    expect(stdout).toContain(`contact.saved delivery ${retried![1]}  attempt 1  signature verified → 503`);
    expect(stdout).not.toContain('SIGNATURE INVALID');
    expect(stdout).toContain('All 3 deliveries arrived and every signature verified.');
    expect(stdout).toMatch(/verdict: ok\./);
    expect(stdout.trimEnd().endsWith('Demo finished.')).toBe(true);
  }, 300_000);
});
