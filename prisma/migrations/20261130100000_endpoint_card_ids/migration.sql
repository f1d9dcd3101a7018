-- Issue 14, item 4: an endpoint may take the events of some of its owner's cards only.
-- `card_ids` lists them; empty (the default) is every card and the profile. An array on the
-- endpoint row rather than a table of pairs: the fan-out filters on the row it reads anyway, so
-- a view costs no extra lookup and no extra WAL. Nullable, as Prisma makes its list columns (and
-- the schema test expects); statements read NULL as empty.
ALTER TABLE "webhook_endpoints" ADD COLUMN "card_ids" UUID[] DEFAULT ARRAY[]::UUID[];

-- What deleting cards does to the endpoints that list them. The cards table is the host's, so
-- the host's own trigger calls this (this repository's: 20261130100500_cards_leave_webhook_endpoints).
-- A deleted card leaves every list it was on. An endpoint whose list that empties is disabled
-- rather than left with an empty list, which would mean every card: an endpoint meant for one
-- card must never start receiving the others'. Disabling is what any other disable does: the
-- reason recorded, the revision bumped, pending deliveries cancelled, other processes told. An
-- in-process worker is not: a route that deletes cards calls WebhookEngine.endpointChanged too.
-- `owners` are the cards' owners: a user's endpoints list only that user's cards (the API checks
-- it), so their index finds the endpoints without reading them all.
CREATE FUNCTION "webhook_endpoints_forget_cards"(cards uuid[], owners uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  disabled uuid[];
BEGIN
  WITH narrowed AS (
    UPDATE webhook_endpoints e SET
      card_ids = k.kept,
      is_active = e.is_active AND NOT k.disabling,
      disabled_at = CASE WHEN k.disabling THEN now() ELSE e.disabled_at END,
      disabled_reason = CASE WHEN k.disabling THEN 'every card it was limited to was deleted' ELSE e.disabled_reason END,
      revision = CASE WHEN k.disabling THEN e.revision + 1 ELSE e.revision END,
      updated_at = now()
    FROM (
      SELECT x.id, l.kept, x.is_active AND cardinality(l.kept) = 0 AS disabling
      FROM webhook_endpoints x
      CROSS JOIN LATERAL (SELECT ARRAY(SELECT c FROM unnest(x.card_ids) AS c WHERE c <> ALL(cards)) AS kept) l
      WHERE x.user_id = ANY(owners) AND x.card_ids && cards
    ) k
    WHERE e.id = k.id
    RETURNING e.id, k.disabling
  )
  SELECT coalesce(array_agg(id) FILTER (WHERE disabling), ARRAY[]::uuid[]) INTO disabled FROM narrowed;

  WITH cancelled AS (
    DELETE FROM webhook_queue q
    WHERE q.endpoint_id = ANY(disabled) AND (q.claim_token IS NULL OR q.lease_until <= now())
    RETURNING q.*
  )
  INSERT INTO webhook_delivery_log (endpoint_id, id, event_id, event_type, status, attempts, error, finished_at, created_at, body)
  SELECT c.endpoint_id, c.delivery_id, c.event_id, c.event_type, 'cancelled', c.attempts,
         'endpoint disabled: every card it was limited to was deleted', now(), c.created_at, c.coalesced_payload::text
  FROM cancelled c;

  PERFORM pg_notify('webhook_endpoint_changed', id::text) FROM unnest(disabled) AS id;
END
$$;
