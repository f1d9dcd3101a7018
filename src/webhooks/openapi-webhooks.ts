import { MAX_RETRY_AFTER_MS, RESPONSE_BODY_LIMIT_BYTES } from './delivery/retry-policy.ts';
import { toJsonSchema, WEBHOOK_BODIES, type JsonSchema, type WebhookBody } from './event-catalogue.ts';
import { webhookRequestHeaders } from './request-headers.ts';

/**
 * The requests the service sends, for an OpenAPI 3.1 document: `webhooks` has one POST per body a
 * receiver can get (each event, and the coalesced `card.viewed`) with its headers, its body and
 * an example; the body schemas go to `components.schemas`, so that a client generator names
 * their types. Everything is generated from the zod schemas of events.ts and request-headers.ts.
 */

const JSON_MEDIA_TYPE = 'application/json';

interface HeaderParameter {
  name: string;
  in: 'header';
  required: true;
  description: string;
  schema: JsonSchema;
}

interface WebhookOperation {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  parameters: HeaderParameter[];
  requestBody: {
    required: true;
    description: string;
    content: Record<string, { schema: { $ref: string }; examples: Record<string, { summary: string; value: unknown }> }>;
  };
  responses: Record<string, { description: string; headers?: Record<string, { description: string; schema: JsonSchema }> }>;
}

export interface OpenApiWebhooks {
  /** The document's `webhooks`. */
  webhooks: Record<string, { post: WebhookOperation }>;
  /** For the document's `components.schemas`. */
  schemas: Record<string, JsonSchema>;
}

const RETRY_AFTER = {
  'Retry-After': {
    description: `Seconds, or an HTTP date: the next attempt waits at least that long (at most ${MAX_RETRY_AFTER_MS / 3_600_000} hour).`,
    schema: { type: 'string' },
  },
} satisfies Record<string, { description: string; schema: JsonSchema }>;

// What the service does with each answer (docs/delivery-semantics.md).
const RESPONSES: WebhookOperation['responses'] = {
  '2XX': {
    description: `Delivered. The first ${RESPONSE_BODY_LIMIT_BYTES / 1024} KiB of your answer's body are kept in the delivery log.`,
  },
  '410': { description: 'Gone: the endpoint is disabled at once, and gets nothing more until it is re-enabled.' },
  '429': { description: 'A failed attempt, retried.', headers: RETRY_AFTER },
  '503': { description: 'A failed attempt, retried.', headers: RETRY_AFTER },
  default: {
    description:
      'Any other status (redirects are not followed) or no answer within the timeout: a failed attempt, retried on the schedule.',
  },
};

export function openApiWebhooks(): OpenApiWebhooks {
  return {
    webhooks: Object.fromEntries(WEBHOOK_BODIES.map((body) => [body.name, { post: operationFor(body) }])),
    schemas: Object.fromEntries(WEBHOOK_BODIES.map((body) => [body.schemaName, withoutDialect(body.schema)])),
  };
}

function operationFor(body: WebhookBody): WebhookOperation {
  return {
    operationId: body.schemaName.charAt(0).toLowerCase() + body.schemaName.slice(1),
    summary: body.summary,
    description: body.description,
    tags: ['webhooks'],
    parameters: headerParameters(body),
    requestBody: {
      required: true,
      description: 'Verify the signature on the raw bytes of the body, before parsing it: they are what is signed.',
      content: {
        [JSON_MEDIA_TYPE]: {
          schema: { $ref: `#/components/schemas/${body.schemaName}` },
          examples: { [body.schemaName]: { summary: body.summary, value: body.example } },
        },
      },
    },
    responses: RESPONSES,
  };
}

function headerParameters(body: WebhookBody): HeaderParameter[] {
  return Object.entries(webhookRequestHeaders(body.type).shape).map(([name, schema]) => {
    const { description = '', ...rest } = withoutDialect(toJsonSchema(schema));
    return { name, in: 'header', required: true, description, schema: rest };
  });
}

// Inside an OpenAPI 3.1 document the schema dialect is the document's (JSON Schema 2020-12).
function withoutDialect(schema: JsonSchema): JsonSchema {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}
