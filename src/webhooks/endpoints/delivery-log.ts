import type { Database } from '../../db/database.ts';
import type { Prisma, WebhookDeliveryStatus } from '../../generated/prisma/client.ts';
import { plannedLastAttemptAt } from '../delivery/retry-policy.ts';
import { renderBody } from '../envelope.ts';
import { receiverOnDroppedSecrets } from '../secret-overlap.ts';
import { describeSignature, SIGNATURE_REFUSED_CODES, signatureHints } from '../signature-debug.ts';
import { deliveryNotFound, endpointNotFound, findOwnEndpoint } from './find-own-endpoint.ts';
import {
  DELIVERY_DETAIL_ATTEMPTS,
  listAttemptsQuery,
  listDeliveriesQuery,
  parseInput,
  type AttemptPage,
  type DeliveryDetail,
  type DeliveryPage,
  type ListAttemptsQuery,
  type ListDeliveriesQuery,
} from './schemas.ts';
import { isUuid } from '../../ids.ts';

export interface DeliveryLogDeps {
  db: Database;
  /** WEBHOOK_RETRY_SCHEDULE, for when a pending delivery's last attempt is planned. */
  retryScheduleMs: readonly number[];
}

const deliverySelect = {
  id: true,
  endpointId: true,
  eventId: true,
  eventType: true,
  status: true,
  attempts: true,
  responseCode: true,
  nextRetryAt: true,
  errorMessage: true,
  deliveredAt: true,
  createdAt: true,
  updatedAt: true,
} as const satisfies Prisma.WebhookDeliverySelect;

const attemptSelect = {
  attemptNumber: true,
  startedAt: true,
  durationMs: true,
  responseCode: true,
  responseBody: true,
  error: true,
  signatureTimestamp: true,
  bodyBytes: true,
  bodySha256: true,
  signedWith: true,
  responseDate: true,
} as const satisfies Prisma.WebhookDeliveryAttemptSelect;

/** The read side of an endpoint's deliveries: the log, one delivery in detail, its attempts. */
export class DeliveryLog {
  readonly #deps: DeliveryLogDeps;

  constructor(deps: DeliveryLogDeps) {
    this.#deps = deps;
  }

  /** The endpoint's deliveries, newest first. */
  async list(userId: string, endpointId: string, query: ListDeliveriesQuery = {}): Promise<DeliveryPage> {
    const { page, limit, status, eventType } = parseInput(listDeliveriesQuery, query);
    await findOwnEndpoint(this.#deps.db.prisma, userId, endpointId, { id: true });
    const where: Prisma.WebhookDeliveryWhereInput = { endpointId, status, eventType };
    const [total, data] = await this.#deps.db.prisma.$transaction([
      this.#deps.db.prisma.webhookDelivery.count({ where }),
      this.#deps.db.prisma.webhookDelivery.findMany({
        where,
        select: deliverySelect,
        // UUIDv7 ids: newest first is descending id, which the (endpoint_id, id) keys serve.
        orderBy: { id: 'desc' },
        skip: (page - 1) * limit,
        take: limit,
      }),
    ]);
    return {
      data: data.map((row) => this.#withRetriesUntil(row)),
      pagination: { page, limit, total, totalPages: Math.ceil(total / limit) },
    };
  }

  /** One delivery with its payload and its newest attempts, each with what it signed and, when refused, hints. */
  async get(userId: string, endpointId: string, deliveryId: string): Promise<DeliveryDetail> {
    if (!isUuid(endpointId)) throw endpointNotFound();
    if (!isUuid(deliveryId)) throw deliveryNotFound();
    const delivery = await this.#deps.db.prisma.webhookDelivery.findFirst({
      where: { id: deliveryId, endpointId, endpoint: { userId } },
      select: {
        ...deliverySelect,
        payload: true,
        body: true,
        attemptsLog: { orderBy: { attemptNumber: 'desc' }, take: DELIVERY_DETAIL_ATTEMPTS, select: attemptSelect },
      },
    });
    if (!delivery) throw deliveryNotFound();
    const { attemptsLog, attempts, payload, body, ...rest } = this.#withRetriesUntil(delivery);
    return {
      ...rest,
      // Parsed from the bytes that were signed, so its keys keep their order: serialised
      // compactly it hashes to the attempts' bodySha256. A pending coalesced delivery has
      // no bytes yet; its payload renders to them.
      payload: JSON.parse(body ?? renderBody(rest.eventId, rest.eventType, payload)) as unknown,
      attemptCount: attempts,
      attempts: await this.#describeAttempts(endpointId, deliveryId, attemptsLog.reverse()),
    };
  }

  /** A delivery's attempts, oldest first, a page at a time. */
  async listAttempts(userId: string, endpointId: string, deliveryId: string, query: ListAttemptsQuery = {}): Promise<AttemptPage> {
    const { page, limit } = parseInput(listAttemptsQuery, query);
    if (!isUuid(endpointId)) throw endpointNotFound();
    if (!isUuid(deliveryId)) throw deliveryNotFound();
    const owned = await this.#deps.db.prisma.webhookDelivery.findFirst({
      where: { id: deliveryId, endpointId, endpoint: { userId } },
      select: { id: true },
    });
    if (!owned) throw deliveryNotFound();
    const [total, rows] = await this.#deps.db.prisma.$transaction([
      this.#deps.db.prisma.webhookDeliveryAttempt.count({ where: { deliveryId } }),
      this.#deps.db.prisma.webhookDeliveryAttempt.findMany({
        where: { deliveryId },
        orderBy: { attemptNumber: 'asc' },
        skip: (page - 1) * limit,
        take: limit,
        select: attemptSelect,
      }),
    ]);
    return {
      data: await this.#describeAttempts(endpointId, deliveryId, rows),
      pagination: { page, limit, total, totalPages: Math.ceil(total / limit) },
    };
  }

  async #describeAttempts(
    endpointId: string,
    deliveryId: string,
    rows: ReadonlyArray<Prisma.WebhookDeliveryAttemptGetPayload<{ select: typeof attemptSelect }>>,
  ): Promise<DeliveryDetail['attempts']> {
    const refused = rows.filter((a) => a.responseCode !== null && SIGNATURE_REFUSED_CODES.includes(a.responseCode));
    const labelled = await receiverOnDroppedSecrets(
      this.#deps.db.sql,
      endpointId,
      deliveryId,
      refused.map((a) => a.attemptNumber),
    );
    return rows.map((a) => {
      const signature = describeSignature(deliveryId, a);
      return {
        attemptNumber: a.attemptNumber,
        startedAt: a.startedAt,
        durationMs: a.durationMs,
        responseCode: a.responseCode,
        responseBody: a.responseBody,
        error: a.error,
        signature,
        hints: signatureHints(a.responseCode, signature, { endpointId, receiverOnSecrets: labelled.get(a.attemptNumber) ?? [] }),
      };
    });
  }

  #withRetriesUntil<R extends { status: WebhookDeliveryStatus; attempts: number; nextRetryAt: Date | null }>(
    row: R,
  ): R & { retriesUntil: Date | null } {
    const retriesUntil =
      row.status === 'pending' && row.nextRetryAt ? plannedLastAttemptAt(row.nextRetryAt, row.attempts, this.#deps.retryScheduleMs) : null;
    return { ...row, retriesUntil };
  }
}
