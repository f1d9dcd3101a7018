-- AlterTable
ALTER TABLE "webhook_endpoints" ADD COLUMN     "revision" INTEGER NOT NULL DEFAULT 0;
