import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/db/unavailable.ts';

/**
 * The shapes an outage takes besides the ones test/routes/database-outage.test.ts produces for
 * real (a restart's 57P03, Prisma's wrapping of a refused connection), and errors that are not one.
 */
const withCode = (message: string, props: Record<string, unknown>) => Object.assign(new Error(message), props);

describe('isDatabaseUnavailable', () => {
  it.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', { code: 'ECONNREFUSED', syscall: 'connect', errno: -111 })],
    ['the server starting up (57P03)', withCode('the database system is starting up', { code: '57P03', severity: 'FATAL' })],
    ['an administrator shutdown (57P01)', withCode('terminating connection due to administrator command', { code: '57P01' })],
    ['a connection exception (08006)', withCode('connection failure', { code: '08006' })],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pool connect timeout', new Error('timeout exceeded when trying to connect')],
    ['a closed embedded store', new Error('PGlite is closed')],
    ["Prisma's P1001", withCode("Can't reach database server at 127.0.0.1:5432", { code: 'P1001', meta: {} })],
    [
      "Prisma's wrapping of a driver error",
      withCode('Database error', {
        code: 'P2039',
        meta: { driverAdapterError: withCode('DriverAdapterError', { cause: { kind: 'postgres', originalCode: '57P03', code: '57P03' } }) },
      }),
    ],
    ['a cause chain', new Error('query failed', { cause: withCode('read ECONNRESET', { code: 'ECONNRESET' }) })],
  ])('%s is an outage', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', withCode('duplicate key value', { code: '23505' })],
    [
      "Prisma's P2002",
      withCode('Unique constraint failed', {
        code: 'P2002',
        meta: { driverAdapterError: { cause: { kind: 'UniqueConstraintViolation' } } },
      }),
    ],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['not an error', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('%s is not', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});
