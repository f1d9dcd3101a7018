/**
 * Connections a process keeps to PostgreSQL at most, unless DATABASE_POOL_SIZE says otherwise.
 * Past about four per core of the database server, more connections only add backends that
 * contend for the same cores: the throughput bench on a 2-core server spent 17 % less PostgreSQL
 * CPU per delivery, and wrote 4 % less WAL, with 8 than with 20 (bench/README.md, "Tonight").
 * Size it to the server, not to the service: N processes hold up to N times this many.
 */
export const DEFAULT_POOL_SIZE = 8;
