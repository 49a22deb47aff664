/*
  Warnings:

  - A unique constraint covering the columns `[organizationId,name]` on the table `Project` will be added. If there are existing duplicate values, this will fail.
  - You are about to alter the column `entityId` on the `AuditLog` table. The data in that column could be lost. The data in that column will be cast from `Text` to `VarChar(64)`.

*/
-- DropIndex
DROP INDEX "Project_organizationId_idx";

-- AlterTable
ALTER TABLE "Project" ALTER COLUMN "name" SET DATA TYPE TEXT;

-- AlterTable
ALTER TABLE "AuditLog" ALTER COLUMN "entityId" SET DATA TYPE VARCHAR(64);

-- CreateIndex
CREATE UNIQUE INDEX "Project_organizationId_name_key" ON "Project"("organizationId", "name");
