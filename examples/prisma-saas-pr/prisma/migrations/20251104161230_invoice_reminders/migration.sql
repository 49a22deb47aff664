-- CreateEnum
CREATE TYPE "public"."ReminderChannel" AS ENUM ('EMAIL', 'WEBHOOK');

-- AlterTable
ALTER TABLE "public"."Invoice" ADD COLUMN     "reminderCount" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "public"."InvoiceReminder" (
    "id" TEXT NOT NULL,
    "invoiceId" UUID NOT NULL,
    "channel" "public"."ReminderChannel" NOT NULL DEFAULT 'EMAIL',
    "sentAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "error" TEXT,

    CONSTRAINT "InvoiceReminder_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "InvoiceReminder_invoiceId_sentAt_idx" ON "public"."InvoiceReminder"("invoiceId", "sentAt");

-- AddForeignKey
ALTER TABLE "public"."InvoiceReminder" ADD CONSTRAINT "InvoiceReminder_invoiceId_fkey" FOREIGN KEY ("invoiceId") REFERENCES "public"."Invoice"("id") ON DELETE CASCADE ON UPDATE CASCADE;
