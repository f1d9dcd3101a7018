-- Issue 14, item 4: an endpoint may take the events of some of its owner's cards only.
-- `card_ids` lists them; empty (the default) is every card and the profile. An array on the
-- endpoint row rather than a table of pairs: the fan-out filters on the row it reads anyway, so
-- a view costs no extra lookup and no extra WAL. No foreign key can point from an array, so the
-- trigger below does on delete what one would do.
ALTER TABLE "webhook_endpoints" ADD COLUMN "card_ids" UUID[] NOT NULL DEFAULT ARRAY[]::UUID[];

-- A deleted card leaves every list it was on. An endpoint whose list that empties is disabled
-- rather than left with an empty list, which would mean every card: an endpoint meant for one
-- card must never start receiving the others'. Disabling is what any other disable does: the
-- reason recorded, the revision bumped, pending deliveries cancelled, other processes told.
-- Today only deleting a user deletes cards (and that user's endpoints with them); a route that
-- deletes a card must also tell its in-process worker (WebhookEngine.endpointChanged).
CREATE FUNCTION webhook_endpoints_cards_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
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
      SELECT x.id, kept, x.is_active AND cardinality(kept) = 0 AS disabling
      FROM webhook_endpoints x
      CROSS JOIN LATERAL (SELECT ARRAY(SELECT c FROM unnest(x.card_ids) AS c WHERE c NOT IN (SELECT id FROM gone)) AS kept) l
      -- A user's endpoints list only that user's cards (the API checks it), so the owners' index finds them.
      WHERE x.user_id IN (SELECT owner_id FROM gone) AND x.card_ids && ARRAY(SELECT id FROM gone)
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
  RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_cards_deleted AFTER DELETE ON cards
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION webhook_endpoints_cards_deleted();
