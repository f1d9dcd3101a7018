import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

const KEY = Buffer.alloc(32, 7).toString('base64');
const SECRETS = { JWT_SECRET: 'a-production-secret-that-is-long-enough-42', WEBHOOK_ENCRYPTION_KEY: KEY };
const base = { DATA_DIR: 'memory', ...SECRETS };

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      nodeEnv: 'development',
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      webhooks: {
        retryScheduleMs: [30_000, 300_000, 1_800_000],
        timeoutMs: 10_000,
        allowPrivateNetworks: false,
        maxEndpointsPerUser: 5,
        workerEnabled: true,
      },
    });
    expect(config.webhookEncryptionKey).toEqual(Buffer.alloc(32, 7));
  });

  it('parses the retry schedule to milliseconds', () => {
    expect(loadConfig({ ...base, WEBHOOK_RETRY_SCHEDULE: '500ms, 30s,5m,1h' }).webhooks.retryScheduleMs).toEqual([
      500, 30_000, 300_000, 3_600_000,
    ]);
    expect(loadConfig({ ...base, WEBHOOK_RETRY_SCHEDULE: '1.5s' }).webhooks.retryScheduleMs).toEqual([1500]);
  });

  it('parses booleans and numbers', () => {
    const config = loadConfig({ ...base, PORT: '8080', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_WORKER: 'off' });
    expect(config.port).toBe(8080);
    expect(config.webhooks.allowPrivateNetworks).toBe(true);
    expect(config.webhooks.workerEnabled).toBe(false);
  });

  it('keeps 8 PostgreSQL connections by default, DATABASE_POOL_SIZE otherwise, and refuses a pool of none', () => {
    expect(loadConfig(base).poolSize).toBe(8);
    expect(loadConfig({ ...base, DATABASE_POOL_SIZE: '3' }).poolSize).toBe(3);
    expect(configError({ ...base, DATABASE_POOL_SIZE: '0' }).message).toMatch(/DATABASE_POOL_SIZE/);
  });

  it('caps attempts per delivery above what the retry schedule makes', () => {
    expect(loadConfig(base).webhooks.maxAttemptsPerDelivery).toBe(25);
    expect(
      loadConfig({ ...base, WEBHOOK_RETRY_SCHEDULE: '1s,2s', WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY: '3' }).webhooks.maxAttemptsPerDelivery,
    ).toBe(3);
    expect(() => loadConfig({ ...base, WEBHOOK_RETRY_SCHEDULE: '1s,2s,3s', WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY: '3' })).toThrow(
      'WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY: must be at least 4',
    );
  });

  it('parses TRUST_PROXY: false by default and in any NODE_ENV, a hop count, or addresses and CIDRs', () => {
    expect(loadConfig(base).trustProxy).toBe(false);
    expect(loadConfig({ ...base, NODE_ENV: 'production' }).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ ...base, TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1,fd00::/8, loopback' }).trustProxy).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      '::1',
      'fd00::/8',
      'loopback',
    ]);
  });

  it('parses the metrics settings: no token, no own listener and a 15 s backlog count by default', () => {
    expect(loadConfig(base).metrics).toEqual({ token: undefined, port: undefined, host: '127.0.0.1', backlogRefreshMs: 15_000 });
    const token = 'metrics-token-that-is-long-enough-0123456789';
    expect(
      loadConfig({ ...base, METRICS_TOKEN: token, METRICS_PORT: '9100', METRICS_HOST: '10.0.0.5', METRICS_BACKLOG_REFRESH_MS: '5000' })
        .metrics,
    ).toEqual({ token, port: 9100, host: '10.0.0.5', backlogRefreshMs: 5000 });
  });

  it('accepts the encryption key as hex too', () => {
    const hex = Buffer.alloc(32, 9).toString('hex');
    expect(loadConfig({ ...base, WEBHOOK_ENCRYPTION_KEY: hex }).webhookEncryptionKey).toEqual(Buffer.alloc(32, 9));
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['WEBHOOK_RETRY_SCHEDULE', '5x'],
    ['WEBHOOK_RETRY_SCHEDULE', '30s,soon'],
    ['WEBHOOK_RETRY_SCHEDULE', ','],
    ['WEBHOOK_RETRY_SCHEDULE', '30s,,5m'],
    ['WEBHOOK_RETRY_SCHEDULE', '200h'],
    ['WEBHOOK_RETRY_SCHEDULE', Array(21).fill('1s').join(',')],
    ['WEBHOOK_ENCRYPTION_KEY', 'too-short'],
    ['WEBHOOK_ENCRYPTION_KEY', Buffer.alloc(16).toString('base64')],
    ['WEBHOOK_ALLOW_PRIVATE_NETWORKS', 'maybe'],
    ['WEBHOOK_WORKER', 'enabled'],
    ['WEBHOOK_TIMEOUT_MS', '0'],
    ['NODE_ENV', 'staging'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['JWT_SECRET', 'short'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', 'yes'],
    ['TRUST_PROXY', '0'],
    ['TRUST_PROXY', '11'],
    ['TRUST_PROXY', '-1'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', '10.0.0.1,,10.0.0.2'],
    ['TRUST_PROXY', '10.0.0.1, proxy.internal'],
    ['TRUST_PROXY', '0x7f.1'],
    ['TRUST_PROXY', 'fd00::/129'],
    ['METRICS_TOKEN', 'too-short'],
    ['METRICS_PORT', '70000'],
    ['METRICS_BACKLOG_REFRESH_MS', '0'],
    ['METRICS_BACKLOG_REFRESH_MS', 'soon'],
  ])('rejects %s=%s with an error naming the variable', (variable, value) => {
    const error = configError({ ...base, [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
  });

  it('requires JWT_SECRET and WEBHOOK_ENCRYPTION_KEY in production', () => {
    expect(configError({ NODE_ENV: 'production', DATA_DIR: 'memory', WEBHOOK_ENCRYPTION_KEY: KEY }).variable).toBe('JWT_SECRET');
    expect(configError({ NODE_ENV: 'production', DATA_DIR: 'memory', JWT_SECRET: SECRETS.JWT_SECRET }).variable).toBe(
      'WEBHOOK_ENCRYPTION_KEY',
    );
    expect(loadConfig({ NODE_ENV: 'production', ...base }).nodeEnv).toBe('production');
  });

  describe('development secrets', () => {
    let dataDir: string;
    beforeEach(async () => {
      dataDir = path.join(await mkdtemp(path.join(tmpdir(), 'devcard-config-')), 'data');
    });
    afterEach(async () => rm(path.dirname(dataDir), { recursive: true, force: true }));

    it('are generated once in DATA_DIR and reused on the next start', () => {
      const first = loadConfig({ DATA_DIR: dataDir });
      const file = path.join(dataDir, 'dev-secrets.json');
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o077).toBe(0);
      expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32);
      expect(first.webhookEncryptionKey).toHaveLength(32);

      const second = loadConfig({ DATA_DIR: dataDir });
      expect(second.jwtSecret).toBe(first.jwtSecret);
      expect(second.webhookEncryptionKey).toEqual(first.webhookEncryptionKey);
    });

    it('are not written when both secrets are given', async () => {
      loadConfig({ DATA_DIR: dataDir, ...SECRETS });
      expect(existsSync(dataDir) ? await readdir(dataDir) : []).toEqual([]);
    });

    it('are fresh per load, and never written, with DATA_DIR=memory', () => {
      expect(loadConfig({ DATA_DIR: 'memory' }).jwtSecret).not.toBe(loadConfig({ DATA_DIR: 'memory' }).jwtSecret);
      expect(existsSync('memory')).toBe(false);
    });
  });
});
