-- This host's cards, wired to the webhooks module's rule for deleted cards: they leave the
-- endpoints' card lists (webhook_endpoints_forget_cards, migration 20261130100000_endpoint_card_ids).
-- A statement trigger, whatever deletes them: today only deleting their user does.
CREATE FUNCTION cards_leave_webhook_endpoints() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM webhook_endpoints_forget_cards(ARRAY(SELECT id FROM gone), ARRAY(SELECT DISTINCT owner_id FROM gone));
  RETURN NULL;
END
$$;
CREATE TRIGGER cards_leave_webhook_endpoints AFTER DELETE ON cards
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION cards_leave_webhook_endpoints();
