import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { AppError, errorBody, ERRORS, SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS, type ErrorCode } from '../errors.ts';

// Fastify's own client errors, by their code, mapped onto the catalogue.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_ERROR',
  FST_ERR_CTP_INVALID_TYPE: 'VALIDATION_ERROR',
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
};

function toAppError(error: FastifyError): AppError | undefined {
  if (error instanceof AppError) return error;
  // An outage of the store is not a bug: the client is told to retry, whichever query met it.
  if (isDatabaseUnavailable(error)) return new AppError('SERVICE_UNAVAILABLE');
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation.map((issue) => ({
      field: [error.validationContext, issue.instancePath.replace(/^\//, '').replaceAll('/', '.')].filter(Boolean).join('.'),
      message: issue.message,
    }));
    return new AppError('VALIDATION_ERROR', details[0] ? `${details[0].field}: ${details[0].message}` : undefined, details);
  }
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped) return new AppError(mapped, mapped === 'VALIDATION_ERROR' ? error.message : undefined);
  if (error instanceof SyntaxError && error.statusCode === 400) return new AppError('INVALID_JSON');
  if (error.statusCode === 429) return new AppError('RATE_LIMITED', error.message || undefined);
  if (error.statusCode === 413) return new AppError('PAYLOAD_TOO_LARGE');
  if (error.statusCode === 401) return new AppError('UNAUTHORIZED');
  if (error.statusCode === 404) return new AppError('NOT_FOUND');
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new AppError('VALIDATION_ERROR', error.message);
  }
  return undefined;
}

/**
 * Fastify answers two kinds of malformed request before routing, in a shape of its own: a path
 * with a bad percent-encoding (`/api/u/%ff`) and a path parameter over 100 characters. Passed
 * as Fastify's `frameworkErrors` option, this gives them the catalogue's shape as well.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.status(400).send(errorBody('VALIDATION_ERROR', error.message));
    return;
  }
  request.log.error({ err: error }, 'framework error');
  void reply.status(500).send(errorBody('INTERNAL_ERROR', ERRORS.INTERNAL_ERROR.message));
}

/**
 * One error shape for every failure: `{ error: { code, message, details? } }`. Set by this
 * plugin for the whole app, and by the webhooks module for its own routes (it may be mounted in
 * an app with another error handler).
 */
export function renderError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const appError = toAppError(error);
  if (appError) {
    if (appError.statusCode >= 500) request.log.error({ err: error }, appError.message);
    if (appError.code === 'SERVICE_UNAVAILABLE') void reply.header('retry-after', String(SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS));
    return reply.status(appError.statusCode).send(errorBody(appError.code, appError.message, appError.details));
  }
  request.log.error({ err: error }, 'unhandled error');
  return reply.status(500).send(errorBody('INTERNAL_ERROR', ERRORS.INTERNAL_ERROR.message));
}

export const errorHandlerPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler(renderError);

    app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
      reply.status(404).send(errorBody('ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`)),
    );
  },
  { name: 'error-handler' },
);
