/**
 * The README's walk-through runs as written: its marked bash blocks are read from README.md at
 * test time and run in order in one bash, as a reader pastes them into a terminal. Only the
 * ports (PORT, RECEIVER_PORT, which the README reads with defaults) and the temporary folder
 * differ, so the blocks cannot drift from what the service does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN_MARKER = '<!-- readme-test: run -->';
/** Start-up, four deliveries, a redelivery, a test event and the self-test: seconds, not minutes. */
const RUN_TIMEOUT_MS = 150_000;

/** Every ```bash block that directly follows the run marker, in document order. */
function runnableBlocks(markdown: string): string[] {
  const pattern = new RegExp(`${RUN_MARKER}\\s*\\n\`\`\`bash\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g');
  return [...markdown.matchAll(pattern)].map((match) => match[1]!);
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * `set -m` gives each background job its own process group, as the interactive shell the README
 * is pasted into does. On failure the trap stops what the blocks started, since the README's own
 * last block never ran, and shows the service's log.
 */
const PRELUDE = `set -euo pipefail
set -m
trap 'status=$?
if [ "$status" -ne 0 ]; then
  [ -n "\${WORK:-}" ] && [ -f "$WORK/service.log" ] && tail -n 40 "$WORK/service.log" >&2
  [ -n "\${RECEIVER_PID:-}" ] && kill "$RECEIVER_PID" 2>/dev/null
  [ -n "\${SERVICE_PID:-}" ] && kill -- -"$SERVICE_PID" 2>/dev/null
fi
exit "$status"' EXIT
`;

/** The reader's shell: none of the service's own settings, which would change what the blocks do. */
function readerEnvironment(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(WEBHOOK_|RATE_LIMIT_|DATABASE_URL$|DATA_DIR$|NODE_ENV$|HOST$|LOG_LEVEL$|JWT_SECRET$|TRUST_PROXY$)/.test(name)) delete env[name];
  }
  return { ...env, ...overrides };
}

async function runInBash(script: string, env: NodeJS.ProcessEnv) {
  const child = spawn('bash', ['-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A hung block: SIGTERM lets bash's trap stop the service; the group kill takes whatever is left.
  const timer = setTimeout(() => {
    stderr += `\n[readme test] no exit after ${RUN_TIMEOUT_MS} ms\n`;
    child.kill('SIGTERM');
    setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group has already gone
      }
    }, 5_000).unref();
  }, RUN_TIMEOUT_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('README walk-through', () => {
  it('runs its marked bash blocks in order, on a fresh store, and every delivery arrives verified', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const blocks = runnableBlocks(readme);
    // Start, users, endpoint, receiver, views, log, actions, stop: losing a marker must not pass quietly.
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    // Deliveries go to the receiver the blocks start on 127.0.0.1, never to another host.
    for (const url of blocks.join('\n').matchAll(/https?:\/\/([^/\s"'$:]+)/g)) expect(url[1]).toBe('127.0.0.1');

    const [port, receiverPort] = [await freePort(), await freePort()];
    const temporary = await mkdtemp(path.join(tmpdir(), 'readme-test-'));
    try {
      const env = readerEnvironment({ PORT: String(port), RECEIVER_PORT: String(receiverPort), TMPDIR: temporary });
      const { code, stdout, stderr } = await runInBash(PRELUDE + blocks.join('\n'), env);
      const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;

      expect(code, output).toBe(0);
      const base = `http://127.0.0.1:${port}`;
      expect(stdout, output).toContain(`portal: ${base}/portal, API reference: ${base}/docs`);
      // The delivery log: three views and one save, all delivered.
      expect(stdout.match(/"eventType":"card\.viewed","status":"success"/g), output).toHaveLength(3);
      expect(stdout.match(/"eventType":"contact\.saved","status":"success"/g), output).toHaveLength(1);
      // The receiver verified each of them, the redelivery under the same webhook-id, and the test event.
      const verified = (event: string) =>
        [...stdout.matchAll(new RegExp(`receiver: verified ${event.replace('.', '\\.')} (\\S+)`, 'g'))].map((m) => m[1]);
      expect(new Set(verified('card.viewed')).size, output).toBe(3);
      const saved = verified('contact.saved');
      expect(saved, output).toHaveLength(2);
      expect(saved[0], output).toBe(saved[1]);
      expect(verified('webhook.test').length, output).toBeGreaterThanOrEqual(1);
      expect(stdout, output).toContain('"ok"');
      expect(stdout, output).toMatch(/^204$/m);
      // The last block stopped the service and removed the store.
      await expect(fetch(`${base}/health`)).rejects.toThrow();
    } finally {
      await rm(temporary, { recursive: true, force: true });
    }
  }, 200_000);
});
