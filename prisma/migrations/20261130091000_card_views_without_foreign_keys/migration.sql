-- A view is a row of an append-only log, written by the statement that reads its owner and its
-- card in the same snapshot. Foreign-key checks there locked the owner's row on every view: a
-- WAL record, and a MultiXact when views of one owner were concurrent (bench/README.md, "Cost
-- model"). What the keys did on delete stays, done by statement triggers instead.
ALTER TABLE "card_views" DROP CONSTRAINT "card_views_owner_id_fkey";
ALTER TABLE "card_views" DROP CONSTRAINT "card_views_card_id_fkey";
ALTER TABLE "card_views" DROP CONSTRAINT "card_views_viewer_id_fkey";

CREATE FUNCTION card_views_users_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM card_views v USING gone g WHERE v.owner_id = g.id;
  UPDATE card_views v SET viewer_id = NULL FROM gone g WHERE v.viewer_id = g.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER card_views_users_deleted AFTER DELETE ON users
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION card_views_users_deleted();

CREATE FUNCTION card_views_cards_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE card_views v SET card_id = NULL FROM gone g WHERE v.card_id = g.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER card_views_cards_deleted AFTER DELETE ON cards
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION card_views_cards_deleted();
