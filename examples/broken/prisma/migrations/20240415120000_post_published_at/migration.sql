-- AlterTable
ALTER TABLE "Post" ADD COLUMN     "publishedAt" TIMESTAMP(3);

-- Backfill (hand-written): published posts get a publication date and a permalink.
UPDATE "Post" SET "publishedAt" = "createdAt" WHERE "status" = 'PUBLISHED';

UPDATE "Post" SET "permalink" = lower("slug") WHERE "permalink" IS NULL;

-- CreateIndex
CREATE INDEX "Post_status_publishedAt_idx" ON "Post"("status", "publishedAt");
