import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';

/**
 * Ids are PostgreSQL `uuid` columns, which take any 8-4-4-4-12 hex value, not only RFC 9562
 * versions: this is the one rule for every id the API reads or shows. An id in a request that
 * breaks it is a miss, answered before the database (where it would be an error, not a miss);
 * as a response field, any stored id serializes.
 */
export const uuidSchema = z.guid();

export function isUuid(value: unknown): value is string {
  return uuidSchema.safeParse(value).success;
}

/**
 * A new event id: a UUIDv7, whose leading milliseconds order events by time and place each in
 * its day's partition (webhooks/queue/partitions.ts). The database makes delivery ids the same way.
 */
export function newEventId(): string {
  return uuidv7();
}
