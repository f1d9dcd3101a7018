-- Issue 13: a delivery used to be one row that was inserted, updated by its claim and updated
-- again by its result, rewriting its five index entries each time. It now lives where each
-- phase is cheapest (bench/README.md has the cost model):
--   webhook_events          the exact bytes of each event, once per event (not once per endpoint)
--   webhook_queue           a row exactly while the delivery is pending; deleted when it finishes
--   webhook_delivery_log    one insert-only row per finished delivery, holding its final attempt
--   webhook_earlier_attempts every attempt that was followed by another one
-- No foreign keys: each FK check locks the endpoint row, a WAL record per delivery. Instead a
-- trigger deletes an endpoint's deliveries when it goes, however it goes (its user deleted too).
-- Log, attempts and events are range-partitioned on their UUIDv7 keys, one partition a day,
-- so retention drops partitions instead of deleting rows (delivery/retention-job.ts creates
-- them ahead). Anything outside them lands in the DEFAULT partition, which retention deletes from.
-- `webhook_deliveries` and `webhook_delivery_attempts` remain, as read-only views over these.

-- A UUIDv7: 48 bits of unix milliseconds, then random bits. Time-ordered ids append on the right
-- of every btree and place rows in their day's partition.
CREATE FUNCTION webhook_uuid7(at timestamptz DEFAULT clock_timestamp()) RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                            PLACING substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3)
                            FROM 1 FOR 6), 52, 1), 53, 1),
    'hex')::uuid
$$;

-- The time in a UUIDv7, to the millisecond: a delivery's creation time.
CREATE FUNCTION webhook_uuid7_time(id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_timestamp(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0)
$$;

CREATE TABLE "webhook_events" (
  "id" UUID NOT NULL,
  "event_type" TEXT NOT NULL,
  "body" TEXT NOT NULL,
  "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("id")
) PARTITION BY RANGE ("id");
CREATE TABLE "webhook_events_default" PARTITION OF "webhook_events" DEFAULT;

-- A claim sets `claim_token` and `lease_until`, neither indexed: the update is HOT and writes no
-- index entry. They come first, so the rest of the row is a suffix the update's WAL record
-- leaves out. A row is due when `due_at` has passed, unless it is claimed under a live lease.
-- `created_at` is set only for ids that are not UUIDv7 (from before this migration): a UUIDv7
-- carries its own (webhook_uuid7_time).
CREATE TABLE "webhook_queue" (
  "lease_until" TIMESTAMPTZ(3),
  "claim_token" UUID,
  "due_at" TIMESTAMPTZ(3) NOT NULL,
  "created_at" TIMESTAMPTZ(3),
  "attempts" INTEGER NOT NULL DEFAULT 0,
  "endpoint_id" UUID NOT NULL,
  "delivery_id" UUID NOT NULL,
  "event_id" UUID NOT NULL,
  "event_type" TEXT NOT NULL,
  "coalesce_key" TEXT,
  "coalesced_payload" JSONB,
  CONSTRAINT "webhook_queue_pkey" PRIMARY KEY ("endpoint_id", "delivery_id")
) WITH (fillfactor = 70);
CREATE INDEX "webhook_queue_due_at_idx" ON "webhook_queue"("due_at");
CREATE UNIQUE INDEX "webhook_queue_open_coalesce_key" ON "webhook_queue"("endpoint_id", "coalesce_key") WHERE (coalesce_key IS NOT NULL);
-- The queue is small and churns (an insert and a delete per delivery): vacuum it by row count, not by size.
ALTER TABLE "webhook_queue" SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_threshold = 10000);

-- Columns in order of alignment (8-byte, 4-byte, then the rest), so a row wastes no padding.
-- The final attempt's sha256 is bytes and its key fingerprints one space-separated text: half
-- the size of hex and of a text[] (the views below show them as before). `finished_at` is set
-- only without a final attempt (it finished when that attempt did); `created_at` as in the queue.
CREATE TABLE "webhook_delivery_log" (
  "finished_at" TIMESTAMPTZ(3),
  "created_at" TIMESTAMPTZ(3),
  "attempt_started_at" TIMESTAMPTZ(3),
  "signature_timestamp" BIGINT,
  "response_date" TIMESTAMPTZ(3),
  "status" "webhook_delivery_status" NOT NULL,
  "attempts" INTEGER NOT NULL,
  "attempt_duration_ms" INTEGER,
  "response_code" INTEGER,
  "body_bytes" INTEGER,
  "endpoint_id" UUID NOT NULL,
  "id" UUID NOT NULL,
  "event_id" UUID NOT NULL,
  "event_type" TEXT NOT NULL,
  "error" TEXT,
  "body" TEXT,
  "response_body" TEXT,
  "body_sha256" BYTEA,
  "signed_with" TEXT,
  CONSTRAINT "webhook_delivery_log_pkey" PRIMARY KEY ("endpoint_id", "id")
) PARTITION BY RANGE ("id");
CREATE TABLE "webhook_delivery_log_default" PARTITION OF "webhook_delivery_log" DEFAULT;

CREATE TABLE "webhook_earlier_attempts" (
  "delivery_id" UUID NOT NULL,
  "attempt_number" INTEGER NOT NULL,
  "started_at" TIMESTAMPTZ(3) NOT NULL,
  "duration_ms" INTEGER NOT NULL,
  "response_code" INTEGER,
  "response_body" TEXT,
  "error" TEXT,
  "signature_timestamp" BIGINT,
  "body_bytes" INTEGER,
  "body_sha256" TEXT,
  "signed_with" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "response_date" TIMESTAMPTZ(3),
  CONSTRAINT "webhook_earlier_attempts_pkey" PRIMARY KEY ("delivery_id", "attempt_number")
) PARTITION BY RANGE ("delivery_id");
CREATE TABLE "webhook_earlier_attempts_default" PARTITION OF "webhook_earlier_attempts" DEFAULT;

-- Existing data. Ids are kept, so a delivery keeps its webhook-id across the upgrade.
-- Their bodies were rendered from jsonb at send time; from now on the stored text is what is sent.
-- A coalesced delivery keeps its own payload.
INSERT INTO "webhook_events" ("id", "event_type", "body", "created_at")
SELECT DISTINCT ON (d.event_id) d.event_id, d.event_type, d.payload::text, d.created_at
FROM "webhook_deliveries" d
WHERE NOT (d.payload -> 'data' ? 'count')
ORDER BY d.event_id, d.created_at;

INSERT INTO "webhook_queue" ("endpoint_id", "delivery_id", "event_id", "event_type", "attempts", "due_at", "lease_until", "claim_token",
                             "coalesce_key", "coalesced_payload", "created_at")
SELECT d.endpoint_id, d.id, d.event_id, d.event_type, d.attempts, coalesce(d.next_retry_at, now()),
       CASE WHEN d.claim_token IS NOT NULL THEN d.next_retry_at END, d.claim_token,
       d.coalesce_key, CASE WHEN d.payload -> 'data' ? 'count' THEN d.payload END, d.created_at
FROM "webhook_deliveries" d
WHERE d.status = 'pending';

INSERT INTO "webhook_delivery_log" ("endpoint_id", "id", "event_id", "event_type", "status", "attempts", "error", "finished_at",
                                    "created_at", "body", "attempt_started_at", "attempt_duration_ms", "response_code",
                                    "response_body", "signature_timestamp", "body_bytes", "body_sha256", "signed_with", "response_date")
SELECT d.endpoint_id, d.id, d.event_id, d.event_type, d.status, d.attempts, d.error_message,
       CASE WHEN a.started_at IS NULL THEN d.updated_at END, d.created_at,
       CASE WHEN d.payload -> 'data' ? 'count' THEN d.payload::text END,
       a.started_at, a.duration_ms, a.response_code, a.response_body, a.signature_timestamp, a.body_bytes,
       decode(a.body_sha256, 'hex'), array_to_string(a.signed_with, ' '), a.response_date
FROM "webhook_deliveries" d
LEFT JOIN "webhook_delivery_attempts" a ON a.delivery_id = d.id AND a.attempt_number = d.attempts
WHERE d.status <> 'pending';

INSERT INTO "webhook_earlier_attempts" ("delivery_id", "attempt_number", "started_at", "duration_ms", "response_code", "response_body",
                                        "error", "signature_timestamp", "body_bytes", "body_sha256", "signed_with", "response_date")
SELECT a.delivery_id, a.attempt_number, a.started_at, a.duration_ms, a.response_code, a.response_body, a.error,
       a.signature_timestamp, a.body_bytes, a.body_sha256, a.signed_with, a.response_date
FROM "webhook_delivery_attempts" a
JOIN "webhook_deliveries" d ON d.id = a.delivery_id
WHERE d.status = 'pending' OR a.attempt_number <> d.attempts
ON CONFLICT DO NOTHING;

DROP TABLE "webhook_delivery_attempts";
DROP TABLE "webhook_deliveries";

CREATE FUNCTION webhook_endpoints_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH queued AS (DELETE FROM webhook_queue q USING gone g WHERE q.endpoint_id = g.id RETURNING q.delivery_id),
       logged AS (DELETE FROM webhook_delivery_log l USING gone g WHERE l.endpoint_id = g.id RETURNING l.id)
  DELETE FROM webhook_earlier_attempts a
  WHERE a.delivery_id IN (SELECT delivery_id FROM queued UNION ALL SELECT id FROM logged);
  RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_deleted AFTER DELETE ON webhook_endpoints
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION webhook_endpoints_deleted();

-- The API's read model: every delivery, pending or finished, as one row. `body` is the exact
-- bytes sent (null for an open or claimed coalesced delivery: its payload renders to them).
-- A claimed row shows its lease's end as its next attempt, as a crashed worker's claim comes due then.
CREATE VIEW "webhook_deliveries" AS
SELECT q.delivery_id AS id, q.endpoint_id, q.event_id, q.event_type,
       coalesce(q.coalesced_payload, e.body::jsonb) AS payload,
       CASE WHEN q.coalesced_payload IS NULL THEN e.body END AS body,
       'pending'::webhook_delivery_status AS status, q.attempts,
       last.response_code, CASE WHEN q.claim_token IS NULL THEN q.due_at ELSE greatest(q.due_at, q.lease_until) END AS next_retry_at,
       q.claim_token, q.coalesce_key,
       last.error AS error_message, NULL::timestamptz(3) AS delivered_at,
       coalesce(q.created_at, webhook_uuid7_time(q.delivery_id)) AS created_at,
       coalesce(last.started_at, q.created_at, webhook_uuid7_time(q.delivery_id)) AS updated_at
FROM webhook_queue q
LEFT JOIN webhook_events e ON e.id = q.event_id
LEFT JOIN LATERAL (
  SELECT x.response_code, x.error, x.started_at FROM webhook_earlier_attempts x
  WHERE x.delivery_id = q.delivery_id AND x.attempt_number = q.attempts
) last ON q.attempts > 0
UNION ALL
SELECT l.id, l.endpoint_id, l.event_id, l.event_type,
       coalesce(l.body, e.body)::jsonb, coalesce(l.body, e.body),
       l.status, l.attempts,
       coalesce(l.response_code, last.response_code), NULL, NULL, NULL,
       l.error, CASE WHEN l.status = 'success' THEN f.finished_at END,
       coalesce(l.created_at, webhook_uuid7_time(l.id)), f.finished_at
FROM webhook_delivery_log l
CROSS JOIN LATERAL (
  SELECT coalesce(l.finished_at, l.attempt_started_at + l.attempt_duration_ms * interval '1 millisecond')::timestamptz(3) AS finished_at
) f
LEFT JOIN webhook_events e ON e.id = l.event_id AND l.body IS NULL
LEFT JOIN LATERAL (
  SELECT x.response_code FROM webhook_earlier_attempts x
  WHERE x.delivery_id = l.id AND x.attempt_number = l.attempts
) last ON l.attempt_started_at IS NULL AND l.attempts > 0;

CREATE VIEW "webhook_delivery_attempts" AS
SELECT a.delivery_id, a.attempt_number, a.started_at, a.duration_ms, a.response_code, a.response_body, a.error,
       a.signature_timestamp, a.body_bytes, a.body_sha256, coalesce(a.signed_with, ARRAY[]::text[]) AS signed_with, a.response_date
FROM webhook_earlier_attempts a
UNION ALL
SELECT l.id, l.attempts, l.attempt_started_at, l.attempt_duration_ms, l.response_code, l.response_body, l.error,
       l.signature_timestamp, l.body_bytes, encode(l.body_sha256, 'hex'),
       coalesce(string_to_array(l.signed_with, ' '), ARRAY[]::text[]), l.response_date
FROM webhook_delivery_log l
WHERE l.attempt_started_at IS NOT NULL;
