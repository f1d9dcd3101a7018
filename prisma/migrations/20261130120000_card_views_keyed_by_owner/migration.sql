-- Views are read by owner and time (and by card, when one is deleted), never by id alone. The
-- key on `id` was an index nothing read, with random insertion points (gen_random_uuid), so each
-- view paid for it: a WAL record and, after every checkpoint, a full-page image for each leaf it
-- touched. The key is now (owner_id, created_at, id) and takes the place of the
-- (owner_id, created_at) index: one index fewer per view (bench/README.md, "Cost model").
ALTER TABLE "card_views" DROP CONSTRAINT "card_views_pkey";
DROP INDEX "card_views_owner_id_created_at_idx";
ALTER TABLE "card_views" ADD CONSTRAINT "card_views_pkey" PRIMARY KEY ("owner_id", "created_at", "id");
