-- AlterTable
ALTER TABLE "public"."Project" ADD COLUMN     "archivedAt" TIMESTAMP(3);
