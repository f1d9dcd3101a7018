import { z } from 'zod';
import { AppError } from '../../errors.ts';

/** The body of POST /api/webhooks/:id/recover, the window it applies, and what it answers. */

const DAY_MS = 86_400_000;

const instant = z.iso
  .datetime({ offset: true, error: 'must be an ISO 8601 date and time with a time zone, such as 2026-11-30T09:00:00Z' })
  .describe('ISO 8601 date and time with a time zone (Z or an offset)');

export const recoverInput = z.strictObject({
  since: instant.describe('Failed deliveries created at or after this time are sent again'),
  until: instant.optional().describe('…and before this time (default: now)'),
});
export type RecoverInput = z.input<typeof recoverInput>;

export const recoveredSchema = z.object({
  requeued: z.int().describe('Failed deliveries of the window queued for another attempt'),
  skipped: z.int().describe('Failed deliveries of the window left alone: they have had WEBHOOK_MAX_ATTEMPTS_PER_DELIVERY attempts'),
  since: z.date(),
  until: z.date().describe('The end of the window applied (now, when none was given)'),
});
export type Recovered = z.infer<typeof recoveredSchema>;

export interface RecoverWindow {
  since: Date;
  until: Date;
}

/** A refusal of one field, in the shape of the API's validation errors, so a form shows it at the field. */
function refuse(field: 'since' | 'until', message: string): AppError {
  return new AppError('VALIDATION_ERROR', `body.${field}: ${message}`, [{ field: `body.${field}`, message }]);
}

/**
 * The window of a recover: [since, until), until defaulting to `now`. Refused when it is empty or
 * reversed, reaches into the future, or starts before the oldest deliveries kept
 * (WEBHOOK_RETENTION_DAYS): those may already be gone, so the answer could not be trusted.
 */
export function recoverWindow(
  input: { since: string; until?: string | undefined },
  rules: { now: Date; retentionDays: number },
): RecoverWindow {
  const since = new Date(input.since);
  const until = input.until === undefined ? rules.now : new Date(input.until);
  if (since > rules.now) throw refuse('since', 'must not be in the future');
  if (until > rules.now) throw refuse('until', 'must not be in the future (leave it out to mean now)');
  if (since >= until) throw refuse('until', 'must be after since');
  const oldest = new Date(rules.now.getTime() - rules.retentionDays * DAY_MS);
  if (since < oldest) {
    const message = `must not be before ${oldest.toISOString()}: deliveries are kept ${rules.retentionDays} days (WEBHOOK_RETENTION_DAYS)`;
    throw new AppError('WINDOW_BEYOND_RETENTION', `body.since: ${message}`, [{ field: 'body.since', message }]);
  }
  return { since, until };
}
