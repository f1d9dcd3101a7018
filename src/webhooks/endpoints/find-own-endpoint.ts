import type { PrismaClient } from '../../db/database.ts';
import { AppError } from '../../errors.ts';
import type { Prisma } from '../../generated/prisma/client.ts';
import { isUuid } from '../../ids.ts';

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
  if (!isUuid(endpointId)) throw endpointNotFound();
  const endpoint = await prisma.webhookEndpoint.findFirst({ where: { id: endpointId, userId }, select });
  if (!endpoint) throw endpointNotFound();
  return endpoint;
}
