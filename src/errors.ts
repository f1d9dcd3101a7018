import { z } from 'zod';

/**
 * The error catalogue: every failure the API reports has a code and a status here.
 * Route and service code throws `AppError`s; the error handler renders
 * `{ error: { code, message, details? } }`.
 */
export const ERRORS = {
  VALIDATION_ERROR: { status: 400, message: 'The request is invalid' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON' },
  URL_NOT_ALLOWED: { status: 400, message: 'This URL is not allowed as a webhook destination' },
  CANNOT_SAVE_OWN_CARD: { status: 400, message: 'You cannot save your own card' },
  WINDOW_BEYOND_RETENTION: { status: 400, message: 'The window starts before the oldest deliveries kept' },
  UNKNOWN_CARD: { status: 400, message: 'Not one of your cards' },
  UNAUTHORIZED: { status: 401, message: 'Authentication required' },
  INVALID_TOKEN: { status: 401, message: 'The bearer token is invalid or expired' },
  INVALID_CREDENTIALS: { status: 401, message: 'Wrong login or password' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  EMAIL_TAKEN: { status: 409, message: 'This email is already registered' },
  USERNAME_TAKEN: { status: 409, message: 'This username is already taken' },
  ENDPOINT_LIMIT_REACHED: { status: 409, message: 'You have reached the maximum number of webhook endpoints' },
  ENDPOINT_URL_EXISTS: { status: 409, message: 'You already have an endpoint with this URL' },
  ENDPOINT_DISABLED: { status: 409, message: 'This endpoint is disabled' },
  ATTEMPT_LIMIT_REACHED: { status: 409, message: 'This delivery has had as many attempts as a delivery may have' },
  NO_PREVIOUS_SECRET: { status: 409, message: 'This endpoint keeps no previous secret to sign with again' },
  CONFLICT: { status: 409, message: 'The request conflicts with the current state' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send the body as application/json' },
  RATE_LIMITED: { status: 429, message: 'Too many requests, slow down' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'The database is unreachable, retry shortly' },
  INTERNAL_ERROR: { status: 500, message: 'Something went wrong on our side' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * `Retry-After` of every 503 SERVICE_UNAVAILABLE: a database restart or failover takes seconds,
 * and clients that wait this long do not pile onto it as it comes back.
 */
export const SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export class AppError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: unknown,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.statusCode = ERRORS[code].status;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** The error body as a response schema, for routes to document their failures in OpenAPI. */
export const errorResponseSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}
