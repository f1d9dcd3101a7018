import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { DEFAULT_POOL_SIZE } from './db/pool-size.ts';
import { parseDuration } from './duration.ts';

/** Every setting the service reads from the environment, parsed and validated in one place. */
export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  logLevel: string;
  /** PostgreSQL URL; undefined means the embedded store in `dataDir`. */
  databaseUrl: string | undefined;
  /** Folder of the embedded store and generated dev keys, or `memory`. */
  dataDir: string;
  /** Connections this process keeps to PostgreSQL at most (DEFAULT_POOL_SIZE). */
  poolSize: number;
  jwtSecret: string;
  /** 32-byte AES-256-GCM master key for endpoint secrets at rest. */
  webhookEncryptionKey: Buffer;
  webhooks: WebhookConfig;
  /**
   * Which peers may set the client address through X-Forwarded-For (Fastify's `trustProxy`):
   * none, the nearest N hops, or these addresses/CIDRs. Rate limits key on the address it yields.
   */
  trustProxy: TrustProxy;
  metrics: MetricsConfig;
  /** Requests per minute per client address (auth, public) or per user (API). */
  rateLimits: { authPerMinute: number; publicPerMinute: number; apiPerMinute: number };
}

export interface WebhookConfig {
  /** Delays between attempts after the first one. */
  retryScheduleMs: number[];
  /** Attempts one delivery may have in all, redeliveries included; at least the retry schedule's. */
  maxAttemptsPerDelivery: number;
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  maxEndpointsPerUser: number;
  /** false: this process serves the API only; `pnpm worker` processes deliver. */
  workerEnabled: boolean;
  retentionDays: number;
  /** At most this many deliveries are kept per endpoint; the oldest finished ones beyond it are pruned. */
  maxDeliveriesPerEndpoint: number;
  /** How often a worker looks for due deliveries it was not told about (other processes, lost timers). */
  sweepIntervalMs: number;
}

/** Who may scrape `/metrics`, where, and how fresh the gauges that cost a query are. */
export interface MetricsConfig {
  /** When set, a scrape needs `Authorization: Bearer <token>`. */
  token: string | undefined;
  /** When set, `/metrics` is served by its own listener on this port, and not by the API's. */
  port: number | undefined;
  host: string;
  /** How often the due backlog is counted; a scrape reads the last count and never queries. */
  backlogRefreshMs: number;
}

export type TrustProxy = false | number | string[];

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const booleanText = z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']).transform((v) => ['true', '1', 'yes', 'on'].includes(v));
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const MAX_RETRIES = 20;
/** Above the longest schedule allowed (1 + MAX_RETRIES attempts), so any valid schedule fits with room to redeliver. */
const DEFAULT_MAX_ATTEMPTS_PER_DELIVERY = 25;
const MAX_RETRY_DELAY_MS = 7 * 24 * 3_600_000;

const retrySchedule = z.string().transform((text, ctx) => {
  // "30s,,5m" or "," is a typo, not a shorter schedule: every comma-separated part must be a duration.
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > MAX_RETRIES) {
    ctx.addIssue({ code: 'custom', message: `at most ${MAX_RETRIES} retries` });
    return z.NEVER;
  }
  const delays: number[] = [];
  for (const part of parts) {
    const ms = parseDuration(part);
    if (ms === undefined || ms > MAX_RETRY_DELAY_MS) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not a duration like 500ms, 30s, 5m or 1h (at most 7 days)` });
      return z.NEVER;
    }
    delays.push(ms);
  }
  return delays;
});

/** More hops than any real chain of proxies: a bigger number is a typo, not a deployment. */
const MAX_TRUSTED_HOPS = 10;
/** proxy-addr's names for whole ranges, which Fastify accepts beside addresses and CIDRs. */
const TRUST_PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

const isAddressOrCidr = (text: string) =>
  TRUST_PROXY_RANGE_NAMES.includes(text) ||
  ipaddr.IPv4.isValidFourPartDecimal(text) ||
  ipaddr.IPv4.isValidCIDRFourPartDecimal(text) ||
  ipaddr.IPv6.isValid(text) ||
  ipaddr.IPv6.isValidCIDR(text);

const trustProxy = z.string().transform((text, ctx): TrustProxy => {
  const value = text.trim();
  if (value === 'false') return false;
  // `true` would trust every peer: any client could then pick its own address and escape the
  // per-address rate limits. The proxies in front are always known by count or by address.
  if (value === 'true') {
    ctx.addIssue({
      code: 'custom',
      message: '"true" would let any client set its own address; give a hop count or the proxies\' addresses',
    });
    return z.NEVER;
  }
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops < 1 || hops > MAX_TRUSTED_HOPS) {
      ctx.addIssue({ code: 'custom', message: `a hop count must be 1 to ${MAX_TRUSTED_HOPS}` });
      return z.NEVER;
    }
    return hops;
  }
  const entries = value.split(',').map((part) => part.trim());
  const bad = entries.find((entry) => !isAddressOrCidr(entry));
  if (bad !== undefined) {
    ctx.addIssue({ code: 'custom', message: `"${bad}" is not an IP address, a CIDR or one of ${TRUST_PROXY_RANGE_NAMES.join(', ')}` });
    return z.NEVER;
  }
  return entries;
});

/** Each variable's schema; a failure names the variable. */
const variables = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  DATABASE_POOL_SIZE: positiveInt.max(1000).default(DEFAULT_POOL_SIZE),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  WEBHOOK_ENCRYPTION_KEY: z.string().optional(),
  WEBHOOK_RETRY_SCHEDULE: retrySchedule.default([30_000, 300_000, 1_800_000]),
  WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY: positiveInt.max(1000).default(DEFAULT_MAX_ATTEMPTS_PER_DELIVERY),
  WEBHOOK_TIMEOUT_MS: positiveInt.max(120_000).default(10_000),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: booleanText.default(false),
  WEBHOOK_MAX_ENDPOINTS_PER_USER: positiveInt.max(1000).default(5),
  WEBHOOK_WORKER: booleanText.default(true),
  WEBHOOK_RETENTION_DAYS: positiveInt.max(3650).default(30),
  WEBHOOK_MAX_DELIVERIES_PER_ENDPOINT: positiveInt.max(10_000_000).default(10_000),
  WEBHOOK_SWEEP_INTERVAL_MS: positiveInt.min(10).max(3_600_000).default(5_000),
  TRUST_PROXY: trustProxy.default(false),
  METRICS_TOKEN: z.string().trim().min(32, 'must be at least 32 characters').optional(),
  METRICS_PORT: port.optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_BACKLOG_REFRESH_MS: positiveInt.min(10).max(3_600_000).default(15_000),
  RATE_LIMIT_AUTH_PER_MINUTE: positiveInt.default(60),
  RATE_LIMIT_PUBLIC_PER_MINUTE: positiveInt.default(6000),
  RATE_LIMIT_API_PER_MINUTE: positiveInt.default(1200),
} as const;

type Parsed = { [K in keyof typeof variables]: z.output<(typeof variables)[K]> };

function parseVariables(env: Env): Parsed {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(variables)) {
    const raw = env[name];
    const result = schema.safeParse(raw === '' ? undefined : raw);
    if (!result.success) {
      throw new ConfigError(name, result.error.issues.map((i) => i.message).join('; '));
    }
    out[name] = result.data;
  }
  return out as Parsed;
}

/** A 32-byte key given as base64 or hex. */
export function decodeEncryptionKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed, 'base64');
    if (bytes.length === 32) return bytes;
  }
  return undefined;
}

interface DevSecrets {
  jwtSecret: string;
  webhookEncryptionKey: string;
}

/** Dev-only secrets, generated on first start and kept in DATA_DIR so tokens survive restarts. */
function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const fresh = (): DevSecrets => ({
    jwtSecret: randomBytes(48).toString('base64url'),
    webhookEncryptionKey: randomBytes(32).toString('base64'),
  });
  if (dataDir === 'memory') return fresh();
  const file = path.join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  mkdirSync(dataDir, { recursive: true });
  const secrets = fresh();
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

export function loadConfig(env: Env = process.env): Config {
  const v = parseVariables(env);
  const production = v.NODE_ENV === 'production';
  if (production && !v.JWT_SECRET) throw new ConfigError('JWT_SECRET', 'required when NODE_ENV=production');
  if (production && !v.WEBHOOK_ENCRYPTION_KEY) {
    throw new ConfigError('WEBHOOK_ENCRYPTION_KEY', 'required when NODE_ENV=production');
  }
  // The cap must not cut the automatic retries short: it bounds what redeliveries add.
  if (v.WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY < v.WEBHOOK_RETRY_SCHEDULE.length + 1) {
    throw new ConfigError(
      'WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY',
      `must be at least ${v.WEBHOOK_RETRY_SCHEDULE.length + 1}, the attempts WEBHOOK_RETRY_SCHEDULE makes`,
    );
  }
  const dev = !v.JWT_SECRET || !v.WEBHOOK_ENCRYPTION_KEY ? loadOrCreateDevSecrets(v.DATA_DIR) : undefined;

  const keyText = v.WEBHOOK_ENCRYPTION_KEY ?? dev!.webhookEncryptionKey;
  const webhookEncryptionKey = decodeEncryptionKey(keyText);
  if (!webhookEncryptionKey) {
    throw new ConfigError('WEBHOOK_ENCRYPTION_KEY', 'must be 32 bytes, as base64 or 64 hex characters');
  }

  return {
    nodeEnv: v.NODE_ENV,
    port: v.PORT,
    host: v.HOST,
    logLevel: v.LOG_LEVEL,
    databaseUrl: v.DATABASE_URL,
    dataDir: v.DATA_DIR,
    poolSize: v.DATABASE_POOL_SIZE,
    jwtSecret: v.JWT_SECRET ?? dev!.jwtSecret,
    webhookEncryptionKey,
    webhooks: {
      retryScheduleMs: v.WEBHOOK_RETRY_SCHEDULE,
      maxAttemptsPerDelivery: v.WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY,
      timeoutMs: v.WEBHOOK_TIMEOUT_MS,
      allowPrivateNetworks: v.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      maxEndpointsPerUser: v.WEBHOOK_MAX_ENDPOINTS_PER_USER,
      workerEnabled: v.WEBHOOK_WORKER,
      retentionDays: v.WEBHOOK_RETENTION_DAYS,
      maxDeliveriesPerEndpoint: v.WEBHOOK_MAX_DELIVERIES_PER_ENDPOINT,
      sweepIntervalMs: v.WEBHOOK_SWEEP_INTERVAL_MS,
    },
    trustProxy: v.TRUST_PROXY,
    metrics: {
      token: v.METRICS_TOKEN,
      port: v.METRICS_PORT,
      host: v.METRICS_HOST,
      backlogRefreshMs: v.METRICS_BACKLOG_REFRESH_MS,
    },
    rateLimits: {
      authPerMinute: v.RATE_LIMIT_AUTH_PER_MINUTE,
      publicPerMinute: v.RATE_LIMIT_PUBLIC_PER_MINUTE,
      apiPerMinute: v.RATE_LIMIT_API_PER_MINUTE,
    },
  };
}

/** For process entries: a bad configuration is one clear line on stderr and exit code 1, not a stack trace. */
export function loadConfigOrExit(env: Env = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}
