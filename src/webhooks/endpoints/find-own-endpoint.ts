import type { PrismaClient } from '../../db/database.ts';
import { AppError } from '../../errors.ts';
import type { Prisma } from '../../generated/prisma/client.ts';

// Ids are UUID columns: anything else would be a database error, not a miss. Response schemas
// use z.guid() (any 8-4-4-4-12 hex, like the column) so a stored id can never fail serialization.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `id` can name a row at all; a request with any other id is answered as a miss. */
export const isRowId = (id: string): boolean => UUID.test(id);

/** Another user's endpoint is this same 404: whether an id exists is not told to a stranger. */
export const endpointNotFound = (): AppError => new AppError('NOT_FOUND', 'Webhook endpoint not found');
export const deliveryNotFound = (): AppError => new AppError('NOT_FOUND', 'Delivery not found');

/** The columns of `endpointId` named by `select` if the endpoint is `userId`'s; otherwise endpointNotFound(). */
export async function findOwnEndpoint<S extends Prisma.WebhookEndpointSelect>(
  prisma: PrismaClient,
  userId: string,
  endpointId: string,
  select: S,
): Promise<Prisma.WebhookEndpointGetPayload<{ select: S }>> {
  if (!isRowId(endpointId)) throw endpointNotFound();
  const endpoint = await prisma.webhookEndpoint.findFirst({ where: { id: endpointId, userId }, select });
  if (!endpoint) throw endpointNotFound();
  return endpoint;
}
