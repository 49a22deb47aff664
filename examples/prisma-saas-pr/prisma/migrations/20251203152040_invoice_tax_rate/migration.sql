/*
  Warnings:

  - Added the required column `taxRate` to the `Invoice` table without a default value. This is not possible if the table is not empty.

*/
-- AlterTable
ALTER TABLE "public"."Invoice" ADD COLUMN     "taxRate" DECIMAL(5,4) NOT NULL;
