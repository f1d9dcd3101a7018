-- AlterTable
ALTER TABLE "webhook_delivery_attempts" ADD COLUMN     "body_bytes" INTEGER,
ADD COLUMN     "body_sha256" TEXT,
ADD COLUMN     "response_date" TIMESTAMPTZ(3),
ADD COLUMN     "signature_timestamp" BIGINT,
ADD COLUMN     "signed_with" TEXT[] DEFAULT ARRAY[]::TEXT[];
