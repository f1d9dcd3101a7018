-- Issue 14, item 5: at most `max_per_second` attempts a second to an endpoint (null: no limit),
-- however many worker processes deliver. `paced_until` is the endpoint's pacing state, advanced
-- by the claim statement that takes its rows (src/webhooks/queue/pacing.ts explains the rule).
-- It is in no index, so advancing it is a HOT update. Unpaced endpoints never write it.
-- The API keeps max_per_second within 1–1,000. No CHECK constraint says so here: Prisma's
-- schema engine (the wasm build `migrate diff` runs on) fails on any; the pacing arithmetic
-- clamps the value instead, so a row written behind the API's back cannot fail every claim.
ALTER TABLE "webhook_endpoints" ADD COLUMN "max_per_second" INTEGER;
ALTER TABLE "webhook_endpoints" ADD COLUMN "paced_until" TIMESTAMPTZ;

-- The paced endpoints, for the worker's wake timer (queue/due.ts): which of them waits for its
-- next turn. Partial, so it stays as small as the number of paced endpoints.
CREATE INDEX "webhook_endpoints_paced_idx" ON "webhook_endpoints"("id") WHERE (max_per_second IS NOT NULL);
