/*
  Warnings:

  - A unique constraint covering the columns `[endpoint_id,coalesce_key]` on the table `webhook_deliveries` will be added. If there are existing duplicate values, this will fail.

*/
-- AlterTable
ALTER TABLE "webhook_deliveries" ADD COLUMN     "coalesce_key" TEXT;

-- AlterTable
ALTER TABLE "webhook_endpoints" ADD COLUMN     "coalesce_seconds" INTEGER NOT NULL DEFAULT 0;

-- CreateIndex
CREATE UNIQUE INDEX "webhook_deliveries_open_coalesce_key" ON "webhook_deliveries"("endpoint_id", "coalesce_key") WHERE (coalesce_key IS NOT NULL);
