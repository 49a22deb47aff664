-- AlterTable
ALTER TABLE "Organization" ADD COLUMN     "billingEmail" TEXT;

-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "dueDate" TIMESTAMP(3),
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0;

-- Backfill (hand-written): bill the owner of each organization until an admin sets an address.
-- billingEmail becomes required in a later migration, once every row has a value.
UPDATE "Organization" AS o
SET "billingEmail" = u."email"
FROM "Membership" AS m
JOIN "User" AS u ON u."id" = m."userId"
WHERE m."organizationId" = o."id"
  AND m."role" = 'OWNER'
  AND o."billingEmail" IS NULL;
